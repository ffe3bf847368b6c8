"""`tvmc micro rpc-worker --tracker HOST:PORT --key KEY PLATFORM`: a board-farm worker (docs/tuning.md)."""

from __future__ import annotations

import argparse

from tvmc_micro.cli.common import add_project_option_arg
from tvmc_micro.platforms import PLATFORM_CHOICES


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rpc-worker",
        help="serve a device to tvmc tune and tvmc run through TVM's RPC tracker (a board-farm worker)",
        description="Register at the RPC tracker under KEY and measure the candidate firmwares tvmc tune "
        "sends on the device of PLATFORM (one board, one QEMU instance or one host process at a time); "
        "tvmc run --rpc-tracker --rpc-key KEY runs whole projects on it the same way.",
    )
    p.add_argument("platform", metavar="PLATFORM", choices=PLATFORM_CHOICES, help=", ".join(PLATFORM_CHOICES))
    p.add_argument("--tracker", required=True, metavar="HOST:PORT", help="the RPC tracker")
    p.add_argument(
        "--key", required=True, help="the key tvmc tune --rpc-key asks for, e.g. cortex_m.mps2_an386"
    )
    p.add_argument("--host", default="127.0.0.1", help="address this worker listens on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9090, help="first port to try (default 9090)")
    p.add_argument("--port-end", type=int, default=9199, help="last port to try (default 9199)")
    p.add_argument("--template-dir", help="template directory (with PLATFORM 'template')")
    add_project_option_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from tvmc_micro.errors import TvmcError
    from tvmc_micro.platforms import canonical_platform
    from tvmc_micro.project import check_options, launched, option_values, template_dir_for
    from tvmc_micro.tune.farm import parse_address, serve
    from tvmc_micro.tune.measure import DeviceSpec

    tracker = parse_address(args.tracker, "--tracker")
    if not args.key.strip():
        raise TvmcError("--key must not be empty", "e.g. --key cortex_m.mps2_an386")
    if not 0 < args.port <= args.port_end < 65536:
        raise TvmcError(f"--port {args.port} .. --port-end {args.port_end} is not a port range")
    options = option_values(args.project_option)
    template = template_dir_for(args.platform, args.template_dir)
    with launched(template, verbose=args.verbose) as (_client, info):
        check_options(info, options)  # a typo fails here, not in every measurement
    spec = DeviceSpec(canonical_platform(args.platform), args.template_dir, options)

    def ready(port: int) -> None:
        print(
            f"tvmc micro rpc-worker: serving {spec.platform} on {args.host}:{port} under key {args.key!r} "
            f"at tracker {tracker[0]}:{tracker[1]}",
            file=sys.stderr,
            flush=True,
        )

    serve(
        tracker,
        args.key,
        spec,
        host=args.host,
        port=args.port,
        port_end=args.port_end,
        verbose=args.verbose,
        ready=ready,
    )
    return 0
