"""Small chat exports in real formats, generated for tests."""

from __future__ import annotations

from datetime import datetime, timedelta

LINES = [
    "你好，最近怎么样？",
    "老板又拖欠工资了，三个月没发[流泪]",
    "要不要去劳动仲裁？",
    "谢谢你 😀",
    "明天下午三点开会",
    "[图片]",
    "工资什么时候发？",
    "好的[OK]",
]


def memotrace_txt(
    count: int, senders: tuple[str, ...] = ("张三", "我"), start: datetime | None = None
) -> bytes:
    """A MemoTrace/WeChatMsg TXT export: header line, body, blank line."""
    moment = start or datetime(2024, 1, 15, 9, 0, 0)
    parts = []
    for n in range(count):
        sender = senders[n % len(senders)]
        text = f"{LINES[n % len(LINES)]} #{n}"
        parts.append(f"{moment:%Y-%m-%d %H:%M:%S} {sender}\n{text}\n\n")
        moment += timedelta(minutes=1)
    return "".join(parts).encode()
