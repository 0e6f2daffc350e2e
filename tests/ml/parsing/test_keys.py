"""Message keys: stable, unique within a chat, shared by overlapping exports."""

from __future__ import annotations

from tests.ml.parsing.helpers import FIXTURES, parse_bytes, parse_fixture


def test_overlapping_exports_share_keys() -> None:
    text = (FIXTURES / "memotrace.txt").read_text(encoding="utf-8")
    blocks = text.split("\n\n2024-01-01 00:02:00 ")
    first_half = blocks[0] + "\n\n"
    later = "2024-01-01 00:02:00 " + blocks[1]
    earlier = (
        "2023-12-31 23:59:58 "
        + text.split("2023-12-31 23:59:58 ")[1].split("\n\n2024-01-01 00:00:05 ")[0]
        + "\n\n"
    )
    whole = {m.key: m.text for m in parse_bytes(text.encode())}
    part_a = {m.key: m.text for m in parse_bytes((first_half).encode())}
    part_b = {m.key: m.text for m in parse_bytes((earlier + later).encode())}
    assert set(part_a) <= set(whole)
    assert set(part_b) <= set(whole)
    assert set(part_a) & set(part_b)  # the overlap is recognisable


def test_keys_are_stable_across_runs_and_unique_within_a_file() -> None:
    first = [m.key for m in parse_fixture("memotrace.txt")]
    assert first == [m.key for m in parse_fixture("memotrace.txt")]
    assert len(set(first)) == len(first)


def test_identical_messages_in_one_second_get_distinct_keys() -> None:
    data = "".join("2024-01-01 10:00:00 张三\n好\n\n" for _ in range(3)).encode()
    keys = [m.key for m in parse_bytes(data)]
    assert len(set(keys)) == 3
    assert keys == [m.key for m in parse_bytes(data)]


def test_server_ids_become_keys() -> None:
    assert [m.key for m in parse_fixture("pywxdump.csv")][:3] == ["id:811", "id:812", "id:813"]
    assert parse_fixture("chatlog.json")[0].key == "id:1704081600000"


def test_keys_do_not_depend_on_the_encoding() -> None:
    text = (FIXTURES / "memotrace.csv").read_text(encoding="utf-8-sig")
    assert [m.key for m in parse_bytes(text.encode("gb18030"))] == [
        m.key for m in parse_fixture("memotrace.csv")
    ]
