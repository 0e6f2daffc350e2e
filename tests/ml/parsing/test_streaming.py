"""Big inputs: a big group chat keeps every sender; memory does not grow with the file."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ml.parsing.helpers import parse_bytes

ROOT = Path(__file__).resolve().parents[3]


def _group_chat(messages: int, senders: int) -> tuple[bytes, list[str]]:
    rng = random.Random(3)
    names = [f"群友{i:02d}" for i in range(senders)]
    lines = []
    second = 0
    for index in range(messages):
        second += rng.randint(0, 3)
        hour, rest = divmod(second, 3600)
        minute, sec = divmod(rest, 60)
        day, hour = divmod(hour, 24)
        body = f"第{index}条" + ("\n多行" if index % 7 == 0 else "")
        lines.append(
            f"2024-01-{1 + day:02d} {hour:02d}:{minute:02d}:{sec:02d} "
            f"{names[index % senders]}\n{body}\n\n"
        )
    return "".join(lines).encode(), names


def test_big_group_chat_keeps_every_sender_and_message() -> None:
    data, names = _group_chat(30_000, 40)
    messages = parse_bytes(data, self_name="群友07")
    assert len(messages) == 30_000
    assert [m.text.split("\n")[0] for m in messages[:3]] == ["第0条", "第1条", "第2条"]
    assert {m.sender for m in messages} == set(names)
    assert sum(1 for m in messages if m.is_self) == 30_000 // 40
    assert len({m.key for m in messages}) == 30_000
    assert [m.timestamp for m in messages] == sorted(m.timestamp for m in messages)


# VmHWM, not ru_maxrss: Linux carries the parent's RSS at fork into a child's ru_maxrss.
_PEAK_RSS = """
import sys
from ml.parsing import parse
with open(sys.argv[1], "rb") as source:
    count = sum(1 for _ in parse(source))
with open("/proc/self/status") as status:
    peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
print(count, peak)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_stays_flat_while_streaming(tmp_path: Path) -> None:
    def peak_kib(messages: int) -> int:
        path = tmp_path / f"chat_{messages}.txt"
        path.write_bytes(_group_chat(messages, 4)[0])
        result = subprocess.run(
            [sys.executable, "-c", _PEAK_RSS, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        count, peak = result.stdout.split()
        assert int(count) == messages
        return int(peak)

    small, large = peak_kib(100_000), peak_kib(400_000)
    # 4x the messages (14 MB of text), yet the peak RSS barely moves: nothing accumulates.
    assert large < small + 8 * 1024, (small, large)
