"""Benchmark: ml.parsing.parse on 1,000,000-message exports against a bare regex scan.

    .venv/bin/python tests/bench/bench_parse.py [--messages 1000000] [--keep DIR]

For a generated MemoTrace TXT and a MemoTrace CSV it prints messages/s of ``parse`` (every
message fully built: datetime, kind, key) and of a bare regex scan of the same file in the
same process (a compiled regex matched against each line, counting record starts: the
baseline of /work/shared/PERF.md), their ratio (target >= 0.5), the same for the whole
``weft parse`` command run in this process (JSON lines written to /dev/null), and the peak
RSS of a fresh process parsing 10k and 1M messages (target: flat, under 300 MB).

``generate_txt(path, n)`` and ``generate_csv(path, n)`` are reused by the ingest benchmark.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml.parsing import cli, parse  # noqa: E402

START = 1_672_502_400  # 2023-01-01 00:00:00 +08:00
SENDERS = ("张三", "李四")
PHRASES = (
    "今天天气不错",
    "你吃饭了吗",
    "哈哈哈哈[微笑]",
    "好的，明天见",
    "我在路上，马上到😂",
    "这个周末有空吗？一起去爬山吧",
    "收到",
    "晚安",
    "刚下班，累死了",
    "你看那个新闻了吗，太离谱了",
)
PLACEHOLDERS = ("[图片]", "[语音]", "[表情包]", "[视频]")


def _timeline(n: int, seed: int = 7) -> list[tuple[int, str, str, int]]:
    """(epoch, sender, body, type) for n messages, deterministic."""
    rng = random.Random(seed)
    epoch = START
    rows = []
    for _ in range(n):
        epoch += rng.randint(1, 40)
        sender = SENDERS[rng.random() < 0.5]
        roll = rng.random()
        if roll < 0.05:
            body, kind = rng.choice(PLACEHOLDERS), 3
        elif roll < 0.10:
            body, kind = rng.choice(PHRASES) + "\n" + rng.choice(PHRASES), 1
        else:
            body, kind = rng.choice(PHRASES), 1
        rows.append((epoch, sender, body, kind))
    return rows


def _local(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch + 8 * 3600))


def generate_txt(path: Path | str, n: int) -> Path:
    """A MemoTrace TXT export of n messages between two people."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as out:
        for epoch, sender, body, _ in _timeline(n):
            out.write(f"{_local(epoch)} {sender}\n{body}\n\n")
    return path


def generate_csv(path: Path | str, n: int) -> Path:
    """A MemoTrace CSV export (utf-8-sig, epoch CreateTime) of the same n messages."""
    path = Path(path)
    columns = [
        "localId",
        "TalkerId",
        "Type",
        "SubType",
        "IsSender",
        "CreateTime",
        "Status",
        "StrContent",
        "StrTime",
        "Remark",
        "NickName",
        "Sender",
    ]
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for local_id, (epoch, sender, body, kind) in enumerate(_timeline(n), 1):
            is_sender = int(sender == SENDERS[0])
            content = body if kind == 1 else '<?xml version="1.0"?><msg><img md5="abc"/></msg>'
            wxid = "wxid_me" if is_sender else "wxid_friend"
            writer.writerow(
                [
                    local_id,
                    12,
                    kind,
                    0,
                    is_sender,
                    epoch,
                    2,
                    content,
                    _local(epoch),
                    sender,
                    sender,
                    wxid,
                ]
            )
    return path


TXT_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
CSV_RECORD = re.compile(r"\d+,\d+,\d+,\d+,[01],\d+,")


def bare_scan(path: Path, pattern: re.Pattern[str]) -> int:
    count = 0
    match = pattern.match
    with path.open(encoding="utf-8-sig") as lines:
        for line in lines:
            if match(line):
                count += 1
    return count


def parse_all(path: Path) -> int:
    count = 0
    with path.open("rb") as source:
        for _ in parse(source):
            count += 1
    return count


def cli_all(path: Path, messages: int) -> int:
    """`weft parse FILE` in this process, its JSON lines written to /dev/null."""
    stdout = sys.stdout
    with open(os.devnull, "wb") as sink:
        sys.stdout = io.TextIOWrapper(sink, write_through=True)
        try:
            status = cli.main([str(path)])
        finally:
            sys.stdout.detach()
            sys.stdout = stdout
    assert status == 0, status
    return messages


def _timed(
    function: Callable[[Path, re.Pattern[str]], int] | Callable[[Path], int], *args: Any
) -> tuple[int, float, float]:
    """(result, wall seconds, CPU seconds): CPU time is steadier on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _best(function: Callable[..., int], *args: Any, runs: int) -> tuple[int, float, float]:
    results = [_timed(function, *args) for _ in range(runs)]
    return results[0][0], min(r[1] for r in results), min(r[2] for r in results)


def peak_rss_mb(path: Path) -> tuple[int, float]:
    """(messages, peak RSS in MB) of a fresh process parsing the file (Linux)."""
    # VmHWM, not ru_maxrss: Linux carries the parent's RSS at fork into a child's ru_maxrss.
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]);"
        "from ml.parsing import parse;"
        "n = sum(1 for _ in parse(open(sys.argv[1], 'rb')));"
        "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0];"
        "print(n, peak)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code, str(path), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(output[0]), int(output[1]) / 1024


def run(n: int, folder: Path, runs: int) -> None:
    for label, generate, pattern in (
        ("TXT", generate_txt, TXT_RECORD),
        ("CSV", generate_csv, CSV_RECORD),
    ):
        big = generate(folder / f"bench_{n}.{label.lower()}", n)
        small = generate(folder / f"bench_10000.{label.lower()}", 10_000)
        size = big.stat().st_size / 1e6
        scanned, scan_wall, scan_cpu = _best(bare_scan, big, pattern, runs=runs)
        parsed, parse_wall, parse_cpu = _best(parse_all, big, runs=runs)
        printed, cli_wall, cli_cpu = _best(cli_all, big, n, runs=runs)
        assert parsed == n, (label, parsed)
        assert scanned == n, (label, scanned)
        small_n, small_rss = peak_rss_mb(small)
        big_n, big_rss = peak_rss_mb(big)
        print(f"{label}: {n:,} messages, {size:.1f} MB (best of {runs} runs)")
        print(
            f"  bare regex scan : {scanned / scan_cpu:>11,.0f} msg/s CPU "
            f"({scan_cpu:.2f} s CPU, {scan_wall:.2f} s wall)"
        )
        print(
            f"  ml.parsing.parse: {parsed / parse_cpu:>11,.0f} msg/s CPU "
            f"({parse_cpu:.2f} s CPU, {parse_wall:.2f} s wall)"
        )
        print(
            f"  ratio parse/scan: {scan_cpu / parse_cpu:.2f} by CPU time, "
            f"{scan_wall / parse_wall:.2f} by wall time (target >= 0.5)"
        )
        print(
            f"  weft parse (JSON lines to /dev/null): {printed / cli_cpu:>11,.0f} msg/s CPU, "
            f"ratio {scan_cpu / cli_cpu:.2f} by CPU time, {scan_wall / cli_wall:.2f} by wall time"
        )
        print(
            f"  peak RSS: {small_rss:.0f} MB at {small_n:,} messages, "
            f"{big_rss:.0f} MB at {big_n:,} (target: flat, < 300 MB)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="write the files here")
    parser.add_argument("--runs", type=int, default=3, help="timed runs, best kept")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.messages, args.keep, args.runs)
        return
    with tempfile.TemporaryDirectory() as folder:
        run(args.messages, Path(folder), args.runs)


if __name__ == "__main__":
    main()
