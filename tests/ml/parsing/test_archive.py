"""Zip archives: members parsed in order, media ignored, hostile archives refused."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest

from ml.parsing import Limits, ParseError, diagnose, parse
from tests.ml.parsing.helpers import FIXTURES, parse_bytes, parse_fixture, summary


def _zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _pywxdump_page(start: int, count: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "id",
            "MsgSvrID",
            "type_name",
            "is_sender",
            "talker",
            "room_name",
            "msg",
            "src",
            "CreateTime",
        ]
    )
    for row in range(start, start + count):
        minute, second = divmod(row, 60)
        hour, minute = divmod(minute, 60)
        talker = "我" if row % 2 else "wxid_zhang"
        writer.writerow(
            [
                row + 1,
                10_000 + row,
                "文本",
                row % 2,
                talker,
                "wxid_zhang",
                f"消息{row}",
                "",
                f"2024-05-{1 + hour // 24:02d} {hour % 24:02d}:{minute:02d}:{second:02d}",
            ]
        )
    return out.getvalue().encode()


def test_pywxdump_split_csvs_join_into_one_chat_in_order() -> None:
    users = {"wxid_zhang": {"wxid": "wxid_zhang", "nickname": "张三", "remark": "老张"}}
    data = _zip(
        [
            ("wxid_zhang/wxid_zhang_10000_15000.csv", _pywxdump_page(10_000, 2_000)),
            ("wxid_zhang/wxid_zhang_0_5000.csv", _pywxdump_page(0, 5_000)),
            ("wxid_zhang/image/2024-05/abc.jpg", b"\xff\xd8\xff" + bytes(100)),
            ("wxid_zhang/wxid_zhang_5000_10000.csv", _pywxdump_page(5_000, 5_000)),
            ("wxid_zhang/audio/wxid_zhang/x.wav", b"RIFF" + bytes(100)),
            ("wxid_zhang/users.json", json.dumps(users, ensure_ascii=False).encode()),
        ]
    )
    messages = parse_bytes(data)
    assert len(messages) == 12_000
    assert [m.text for m in messages[:2]] == ["消息0", "消息1"]
    assert messages[-1].text == "消息11999"
    times = [m.timestamp for m in messages]
    assert times == sorted(times)
    assert {m.sender for m in messages} == {"老张", "我"}
    assert len({m.key for m in messages}) == 12_000
    assert messages[0].raw["member"] == "wxid_zhang/wxid_zhang_0_5000.csv"


def test_one_folder_with_a_chat_in_several_formats_reads_the_richest() -> None:
    folder = "data/聊天记录/老张/"
    data = _zip(
        [
            (folder + "老张.html", (FIXTURES / "memotrace.html").read_bytes()),
            (folder + "老张.txt", (FIXTURES / "memotrace.txt").read_bytes()),
            (folder + "老张_utf8.csv", (FIXTURES / "memotrace.csv").read_bytes()),
            (folder + "image/a.jpg", b"\xff\xd8\xff"),
        ]
    )
    assert summary(parse_bytes(data)) == summary(parse_fixture("memotrace.csv"))
    attempts = diagnose(io.BytesIO(data))
    notes = {attempt.format: attempt for attempt in attempts}
    assert not notes[folder + "老张.txt"].accepted
    assert "richer format" in notes[folder + "老张.txt"].reason
    assert notes[folder + "老张_utf8.csv"].accepted


@pytest.mark.parametrize("order", [1, -1])
def test_a_chat_in_two_members_of_one_format_is_read_once(order: int) -> None:
    # 老张.csv beside 老张_utf8.csv (an older export, or a copy saved again as GBK by Excel):
    # reading both would give every message twice. The _utf8 one is MemoTrace's own name.
    text = (FIXTURES / "memotrace.csv").read_text(encoding="utf-8-sig")
    folder = "data/聊天记录/老张/"
    members = [
        (folder + "老张.csv", text.replace("早点睡吧", "另一份").encode("gb18030")),
        (folder + "老张_utf8.csv", text.encode("utf-8-sig")),
    ][::order]
    data = _zip(list(members))
    assert summary(parse_bytes(data)) == summary(parse_fixture("memotrace.csv"))
    notes = {attempt.format: attempt for attempt in diagnose(io.BytesIO(data))}
    assert notes[folder + "老张_utf8.csv"].accepted
    assert not notes[folder + "老张.csv"].accepted
    assert "老张_utf8.csv beside it" in notes[folder + "老张.csv"].reason


def test_different_chats_are_all_read() -> None:
    data = _zip(
        [
            ("b.json", (FIXTURES / "chatlog.json").read_bytes()),
            ("a.txt", (FIXTURES / "memotrace.txt").read_bytes()),
            ("readme.md", "这是说明文件".encode()),
        ]
    )
    messages = parse_bytes(data)
    assert len(messages) == 12 + 6
    assert messages[0].raw["member"] == "a.txt"
    assert messages[-1].raw["member"] == "b.json"


def test_member_encodings_are_detected_per_member() -> None:
    text = (FIXTURES / "memotrace.txt").read_text(encoding="utf-8")
    data = _zip([("gb.txt", text.encode("gb18030")), ("u16.txt", text.encode("utf-16"))])
    messages = parse_bytes(data)
    assert [m.text for m in messages[:12]] == [m.text for m in messages[12:]]


def test_zip_inside_a_zip() -> None:
    inner = _zip([("chat.txt", (FIXTURES / "memotrace.txt").read_bytes())])
    messages = parse_bytes(_zip([("export.zip", inner)]))
    assert len(messages) == 12
    assert messages[0].raw["member"] == "export.zip/chat.txt"


def test_deeply_nested_zip_is_refused() -> None:
    data = _zip([("chat.txt", (FIXTURES / "memotrace.txt").read_bytes())])
    for level in range(3):
        data = _zip([(f"level{level}.zip", data)])
    with pytest.raises(ParseError, match="nested more than 2 deep"):
        parse_bytes(data)


@pytest.mark.parametrize(
    "name",
    [
        "../evil.txt",
        "/etc/passwd.txt",
        "C:/Windows/x.txt",
        "ok/../../escape.txt",
        "a\\..\\..\\b.txt",
    ],
)
def test_path_traversal_names_are_refused(name: str) -> None:
    data = _zip(
        [
            ("chat.txt", (FIXTURES / "memotrace.txt").read_bytes()),
            (name, b"2024-01-01 10:00:00 x\ny\n\n"),
        ]
    )
    with pytest.raises(ParseError, match="path traversal"):
        parse_bytes(data)


def test_zip_bomb_is_refused_by_ratio() -> None:
    data = _zip([("chat.txt", bytes(8 * 1024 * 1024))])
    with pytest.raises(ParseError, match="zip bomb"):
        parse_bytes(data)


def test_zip_bomb_is_refused_by_total_size() -> None:
    text = (FIXTURES / "memotrace.txt").read_bytes()
    data = _zip([(f"chat{i}.txt", text) for i in range(20)])
    with pytest.raises(ParseError, match="expands to more than 10,000 bytes"):
        parse_bytes(data, limits=Limits(max_total_bytes=10_000))


def test_too_many_members_are_refused() -> None:
    data = _zip([(f"img{i}.jpg", b"x") for i in range(30)])
    with pytest.raises(ParseError, match="30 entries"):
        parse_bytes(data, limits=Limits(max_members=10))


def test_encrypted_member_is_refused() -> None:
    data = bytearray(_zip([("chat.txt", (FIXTURES / "memotrace.txt").read_bytes())]))
    # zipfile cannot write encrypted members: set the "encrypted" flag bit by hand in the
    # local header (offset 6) and the central directory entry (offset 8).
    data[6] |= 0x1
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 0x1
    with pytest.raises(ParseError, match="encrypted"):
        parse_bytes(bytes(data))


def test_zip_of_media_only() -> None:
    data = _zip([("a.jpg", b"\xff\xd8\xff"), ("b.mp4", b"\x00\x00\x00\x18ftyp")])
    with pytest.raises(ParseError, match="no recognizable chat export"):
        parse_bytes(data)


def test_damaged_zip() -> None:
    data = _zip([("chat.txt", (FIXTURES / "memotrace.txt").read_bytes())])
    with pytest.raises(ParseError, match="damaged or truncated"):
        parse_bytes(data[: len(data) // 2])


def test_zip_parse_does_not_close_the_callers_file() -> None:
    source = io.BytesIO(_zip([("chat.txt", (FIXTURES / "memotrace.txt").read_bytes())]))
    assert len(list(parse(source))) == 12
    assert not source.closed
