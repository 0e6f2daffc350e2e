"""The `weft parse` contract, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from tests.ml.parsing.helpers import FIXTURES

ROOT = Path(__file__).resolve().parents[3]


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ml.parsing.cli", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def _lines(output: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.decode().splitlines()]


def test_prints_one_json_object_per_message_in_order() -> None:
    result = _run(str(FIXTURES / "memotrace.txt"), "--self", "小明")
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    records = _lines(result.stdout)
    assert len(records) == 12
    for record in records:
        assert {"sender", "timestamp", "text", "kind", "is_self", "raw"} <= set(record)
        assert datetime.fromisoformat(str(record["timestamp"])).utcoffset() is not None
    assert records[0] == {
        "sender": "张三",
        "sender_id": None,
        "timestamp": "2023-12-31T23:59:58+08:00",
        "text": "新年快乐！[微笑]",
        "kind": "text",
        "is_self": False,
        "raw": {},
        "key": records[0]["key"],
    }
    assert [r["is_self"] for r in records[:2]] == [False, True]
    assert records[4]["is_self"] is None
    times = [str(r["timestamp"]) for r in records]
    assert times == sorted(times)


def test_time_zone_option() -> None:
    result = _run(str(FIXTURES / "memotrace.txt"), "--tz", "UTC")
    assert _lines(result.stdout)[0]["timestamp"] == "2023-12-31T23:59:58+00:00"
    offset = _run(str(FIXTURES / "chatlog.json"), "--tz", "+09:00")
    assert _lines(offset.stdout)[0]["timestamp"] == "2024-01-01T13:00:00+09:00"


def test_format_option_restricts_detection() -> None:
    assert _run(str(FIXTURES / "memotrace.csv"), "--format", "csv").returncode == 0
    result = _run(str(FIXTURES / "memotrace.csv"), "--format", "json")
    assert result.returncode == 2
    assert b"not a json export" in result.stderr


def test_stdin() -> None:
    result = _run("-", stdin=(FIXTURES / "chatlog.json").read_bytes())
    assert result.returncode == 0, result.stderr
    assert len(_lines(result.stdout)) == 6


def _assert_clean_failure(result: subprocess.CompletedProcess[bytes], fragment: str) -> None:
    assert result.returncode == 2
    assert result.stdout == b""
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert fragment in stderr


def test_unparseable_files_fail_with_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    _assert_clean_failure(_run(str(empty)), "the file is empty")
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    _assert_clean_failure(_run(str(binary)), "PNG image")
    prose = tmp_path / "notes.txt"
    prose.write_text("随便写点什么\n", encoding="utf-8")
    _assert_clean_failure(_run(str(prose)), "not a known export format")
    page = (FIXTURES / "memotrace.html").read_bytes()
    truncated = tmp_path / "cut.html"
    truncated.write_bytes(page[: page.index(b"{ type:34")])
    _assert_clean_failure(_run(str(truncated)), "truncated")


def test_missing_file_and_bad_arguments() -> None:
    _assert_clean_failure(_run("/nonexistent/chat.txt"), "cannot read the file")
    _assert_clean_failure(
        _run(str(FIXTURES / "memotrace.txt"), "--tz", "Nowhere/City"), "unknown time zone"
    )
    bad = _run(str(FIXTURES / "memotrace.txt"), "--format", "docx")
    assert bad.returncode == 2
    assert b"Traceback" not in bad.stderr


def test_diagnose_explains_the_choice() -> None:
    result = _run(str(FIXTURES / "memotrace.txt"), "--diagnose")
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert any(line.startswith("ok  memotrace_txt:") for line in lines)
    assert any(line.startswith("no  chatlog_csv:") for line in lines)
    assert lines[-1].startswith("ok  auto: would be read as memotrace_txt")


def test_diagnose_of_an_unknown_file(tmp_path: Path) -> None:
    prose = tmp_path / "notes.txt"
    prose.write_text("随便写点什么\n", encoding="utf-8")
    result = _run(str(prose), "--diagnose")
    assert result.returncode == 2
    assert b"no  memotrace_txt:" in result.stdout
    assert result.stderr.decode().count("\n") == 1
