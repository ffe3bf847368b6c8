#!/usr/bin/env python3
"""Host-side cost of the device session over a pipe (crt_host firmware of the reference tiny model).

Measures, per negotiated packet size:
- RUN round trip: host wall time of session.run() on the 4-byte tiny model (the model itself takes well
  under a microsecond, reported by the device timer), i.e. the session overhead per inference;
- a whole small inference: set_input + run + get_output on the 4-byte model;
- transfer throughput of set_input and get_output for a large tensor (bytes per second of tensor data).

Prints a table; `--json FILE` writes the same figures. Example:
    python benchmarks/session_overhead.py --runs 2000 --size 262144 --json /tmp/session.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "project_api"))

from tvmc_micro.device import DeviceSession
from tvmc_micro.device.process import ProcessTransport
from tvmc_micro.device.reference_model import build_host_firmware, expected_output, write_tiny_mlf


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_round_trips(firmware: Path, runs: int) -> dict[str, float]:
    transport = ProcessTransport([str(firmware)])
    session = DeviceSession(transport)
    session.open()
    x = b"\x01\x02\x03\x04"
    session.set_input(0, x)
    for _ in range(50):  # warm-up
        session.run()
    run_us, device_us, infer_us = [], [], []
    hz = session.info().timer_hz
    for _ in range(runs):
        start = time.perf_counter()
        ticks = session.run()
        run_us.append((time.perf_counter() - start) * 1e6)
        device_us.append(ticks / hz * 1e6)
    for _ in range(runs):
        start = time.perf_counter()
        session.set_input(0, x)
        session.run()
        y = session.get_output(0)
        infer_us.append((time.perf_counter() - start) * 1e6)
    assert y == expected_output(x)
    session.close()
    return {
        "run_round_trip_us_median": statistics.median(run_us),
        "run_round_trip_us_p95": _percentile(run_us, 0.95),
        "device_run_us_median": statistics.median(device_us),
        "session_overhead_us_median": statistics.median(run_us) - statistics.median(device_us),
        "small_inference_us_median": statistics.median(infer_us),
    }


def measure_throughput(firmware: Path, size: int, repeats: int) -> dict[str, float]:
    transport = ProcessTransport([str(firmware)])
    session = DeviceSession(transport)
    hello = session.open()
    data = os.urandom(size)
    set_s, get_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        session.set_input(0, data)
        set_s.append(time.perf_counter() - start)
        session.run()
        start = time.perf_counter()
        out = session.get_output(0)
        get_s.append(time.perf_counter() - start)
    assert out == expected_output(data)
    session.close()
    return {
        "max_request": hello.max_request,
        "max_reply": hello.max_reply,
        "set_input_bytes_per_s": size / statistics.median(set_s),
        "get_output_bytes_per_s": size / statistics.median(get_s),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2000, help="round trips to time (default 2000)")
    parser.add_argument("--size", type=int, default=262144, help="tensor bytes for throughput (256 KiB)")
    parser.add_argument("--repeats", type=int, default=5, help="transfers per throughput figure (median)")
    parser.add_argument("--payloads", default="256,1024,16384",
                        help="firmware packet sizes (CRT_HOST_MAX_PAYLOAD) to compare, comma-separated")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="tvmc-session-bench-") as tmp:
        root = Path(tmp)
        small = write_tiny_mlf(root / "small", n=4)
        big = write_tiny_mlf(root / "big", n=args.size)
        for payload in (int(p) for p in args.payloads.split(",")):
            flags = (f"-DCRT_HOST_MAX_PAYLOAD={payload}",)
            fw_small = build_host_firmware(small, root / f"small_{payload}", extra_flags=flags)
            fw_big = build_host_firmware(big, root / f"big_{payload}", extra_flags=flags)
            row: dict[str, float] = {"payload": payload}
            row.update(measure_round_trips(fw_small, args.runs))
            row.update(measure_throughput(fw_big, args.size, args.repeats))
            rows.append(row)

    header = (f"{'packet':>7} {'RUN rtt us':>11} {'p95 us':>8} {'device us':>10} {'overhead us':>12} "
              f"{'infer us':>9} {'set_input MB/s':>15} {'get_output MB/s':>16}")
    print(f"session over a pipe to crt_host firmware; {args.runs} round trips, {args.size}-byte tensors")
    print(header)
    for r in rows:
        print(f"{int(r['payload']):>7} {r['run_round_trip_us_median']:>11.1f} "
              f"{r['run_round_trip_us_p95']:>8.1f} "
              f"{r['device_run_us_median']:>10.2f} {r['session_overhead_us_median']:>12.1f} "
              f"{r['small_inference_us_median']:>9.1f} {r['set_input_bytes_per_s'] / 1e6:>15.1f} "
              f"{r['get_output_bytes_per_s'] / 1e6:>16.1f}")
    if args.json:
        figures = {"runs": args.runs, "size": args.size, "results": rows}
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
