"""Benchmark: building a dataset from generated messages, against only reading them.

    .venv/bin/python tests/bench/bench_dataset.py [--messages 1000000] [--spec JSON] [--no-rss]

1. Throughput, in this process: a bare pass that only iterates `generate_messages(N)` (the
   same source the build reads), then `build_dataset` on the same messages with the default
   spec for the generator's persona (PII scrubbing, exact and near dedupe, eval split on),
   writing to a byte-counting sink. Prints messages/s, examples/s and the ratio of build
   throughput to bare throughput (target >= 0.3x). CPU time of the process is reported
   beside wall time: on a shared machine it is the steadier figure.
2. Peak RSS, each in a fresh child process: the bare pass and the build at 100k and at N
   messages. Memory is flat if the build's peak grows by no more than the dedupe memory
   (about 70 bytes per kept example, plus about 200 per example long enough for near-duplicate
   checks; see ml/datasets/dedupe.py); a second build with dedupe off shows the rest is flat.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml.datasets import DatasetSpec, build_dataset  # noqa: E402
from ml.datasets.synthetic import SELF_NAME, generate_messages  # noqa: E402

DEFAULT_SPEC = DatasetSpec(persona=(SELF_NAME,))


class CountingSink:
    """A binary stream that keeps nothing: the build's output must not sit in memory."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)


def bare_pass(count: int) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    read = 0
    for _ in generate_messages(count):
        read += 1
    return time.perf_counter() - wall, time.process_time() - cpu, read


def build_pass(count: int, spec: DatasetSpec) -> tuple[float, float, dict[str, Any]]:
    train, evaluation = CountingSink(), CountingSink()
    wall, cpu = time.perf_counter(), time.process_time()
    stats = build_dataset(generate_messages(count), spec, train, evaluation)  # type: ignore[arg-type]
    return time.perf_counter() - wall, time.process_time() - cpu, stats.to_dict()


def peak_rss_mib() -> float:
    """Peak resident memory of this process image, in MiB.

    VmHWM from /proc, not getrusage: Linux carries ru_maxrss across exec, so a child would
    report its parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(mode: str, count: int, spec_json: str) -> None:
    import numpy  # noqa: F401  (loaded by the build's near dedupe: count it in both)

    if mode == "bare":
        bare_pass(count)
        examples = 0
    else:
        _, _, stats = build_pass(count, DatasetSpec.from_json(spec_json))
        examples = stats["examples"]
    print(json.dumps({"rss_mib": peak_rss_mib(), "examples": examples}))


def run_child(mode: str, count: int, spec: DatasetSpec) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--messages",
            str(count),
            "--spec",
            spec.to_json(),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--spec", default=DEFAULT_SPEC.to_json(), help="a DatasetSpec as JSON")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--child", choices=["bare", "build"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.messages, args.spec)
        return

    count = args.messages
    spec = DatasetSpec.from_json(args.spec)
    print(f"messages: {count:,}; spec: {spec.to_json()}")
    build_pass(10_000, spec)  # warm up: imports, compiled patterns

    bare_wall, bare_cpu, _ = bare_pass(count)
    build_wall, build_cpu, stats = build_pass(count, spec)
    examples = stats["examples"]
    print(
        f"bare pass : {bare_wall:7.2f} s wall {bare_cpu:7.2f} s cpu"
        f"  {count / bare_wall:10,.0f} messages/s"
    )
    print(
        f"build     : {build_wall:7.2f} s wall {build_cpu:7.2f} s cpu"
        f"  {count / build_wall:10,.0f} messages/s  {examples / build_wall:8,.0f} examples/s"
        f"  ({examples:,} examples)"
    )
    print(
        f"ratio build/bare throughput: {bare_wall / build_wall:.2f}x wall, "
        f"{bare_cpu / build_cpu:.2f}x cpu  (target >= 0.3x)"
    )
    print(f"dropped examples: {stats['dropped_examples']}")
    if args.no_rss:
        return

    small = min(100_000, count)
    no_dedupe = DatasetSpec.from_dict({**spec.to_dict(), "dedupe": {"exact": False, "near": False}})
    print("peak RSS (fresh process each):")
    rows = [
        ("bare pass", "bare", spec),
        ("build", "build", spec),
        ("build, dedupe off", "build", no_dedupe),
    ]
    for label, mode, run_spec in rows:
        at_small = run_child(mode, small, run_spec)
        at_full = run_child(mode, count, run_spec)
        print(
            f"  {label:18s} {small:>9,}: {at_small['rss_mib']:7.1f} MiB   "
            f"{count:>9,}: {at_full['rss_mib']:7.1f} MiB   "
            f"growth {at_full['rss_mib'] - at_small['rss_mib']:+6.1f} MiB"
            + (
                f" for {at_full['examples'] - at_small['examples']:,} more examples"
                if mode == "build"
                else ""
            )
        )


if __name__ == "__main__":
    main()
