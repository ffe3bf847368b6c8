"""Host side of the device session: framing, session and commands over a Project API transport."""

from tvmc_micro.device.errors import (
    DeviceCommandError,
    DeviceError,
    DeviceProtocolError,
    DeviceResetError,
    DeviceTimeoutError,
    DeviceTransportClosedError,
)
from tvmc_micro.device.session import (
    DeviceInfo,
    DeviceSession,
    OpProfile,
    SessionStats,
    TimingResult,
    check_signature,
)

__all__ = [
    "DeviceCommandError",
    "DeviceError",
    "DeviceInfo",
    "DeviceProtocolError",
    "DeviceResetError",
    "DeviceSession",
    "DeviceTimeoutError",
    "DeviceTransportClosedError",
    "OpProfile",
    "SessionStats",
    "TimingResult",
    "check_signature",
]
