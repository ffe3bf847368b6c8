"""Errors of the host side of the device session. All are `TvmcError`s: a message plus what to try."""

from __future__ import annotations

from tvmc_micro.errors import TvmcError


class DeviceError(TvmcError):
    """Base of every device-session failure."""


class DeviceTimeoutError(DeviceError):
    """The device did not answer a request within the retry budget."""


class DeviceResetError(DeviceError):
    """The device restarted during the session (its state, e.g. the inputs set so far, is gone)."""


class DeviceProtocolError(DeviceError):
    """The device answered something the protocol does not allow (version, sequence, malformed reply)."""


class DeviceCommandError(DeviceError):
    """The device executed the request and reported a failure status."""

    def __init__(self, message: str, hint: str | None = None, *, status: int = 0, detail: int = 0) -> None:
        super().__init__(message, hint)
        self.status = status
        self.detail = detail


class DeviceTransportClosedError(DeviceError):
    """The transport reached end of file: the device (or the process standing for it) went away."""
