"""Where the files that are not Python live: the device runtime and the project templates.

In a checkout (or an editable install) they are the repository's `runtime/` and `template_projects/`.
A wheel or sdist install carries copies as package data under `tvmc_micro/_resources/` (setup.py puts
them there at build time), found with importlib.resources. Nothing here falls back silently: a missing
folder is an error that says the installation is incomplete.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from tvmc_micro.errors import TvmcError

# Shipped folders, by the name they have at the repository root and inside the package.
RESOURCE_NAMES = ("runtime", "template_projects")
PACKAGED_DIR = "_resources"
_CHECKOUT_ROOT = Path(__file__).resolve().parents[2]  # <repo>/client/tvmc_micro/resources.py


def resource_dir(name: str) -> Path:
    """The directory of one shipped folder (`runtime` or `template_projects`)."""
    if name not in RESOURCE_NAMES:
        raise ValueError(f"unknown resource folder {name!r}")
    packaged = importlib.resources.files("tvmc_micro").joinpath(PACKAGED_DIR, name)
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = _CHECKOUT_ROOT / name
    if checkout.is_dir():
        return checkout
    raise TvmcError(
        f"this installation of tvmc-micro has no {name}/ folder (looked in {packaged} and {checkout})",
        "reinstall it from a wheel or sdist built with `pip wheel .`, or `pip install -e .` in a checkout",
    )


def runtime_dir() -> Path:
    """The C runtime and device RPC server sources copied into every MLF."""
    return resource_dir("runtime")


def templates_dir() -> Path:
    """The project templates (`crt_host`, `cortex_m`, `zephyr`)."""
    return resource_dir("template_projects")
