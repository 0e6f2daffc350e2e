"""docker-compose.yml and the README stay true to the code: real commands, real settings."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.cli import build_parser
from server.settings import setting_names

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def weft_commands() -> list[tuple[str, list[str]]]:
    commands = []
    for name, service in compose()["services"].items():
        command = service.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        if command and command[0] == "weft":
            commands.append((name, command[1:]))
    return commands


@pytest.mark.parametrize(("service", "argv"), weft_commands())
def test_compose_commands_are_weft_subcommands(service: str, argv: list[str]) -> None:
    if argv[0] == "parse":  # handled before argparse
        return
    build_parser().parse_args(argv)


def test_every_role_is_in_compose() -> None:
    commands = {" ".join(argv[:2]) for _, argv in weft_commands()}
    expected = {"serve --host", "migrate", "worker parse", "worker label", "worker train"}
    assert expected <= commands
    assert "inference-worker" in commands
    assert {"mysql", "redis", "minio"} <= set(compose()["services"])


def test_compose_variables_are_settings() -> None:
    known = set(setting_names())
    used = set()
    for service in compose()["services"].values():
        environment = service.get("environment") or {}
        used |= {name for name in environment if name.startswith("WEFT_")}
    assert used, "compose sets no WEFT_* variable"
    assert used <= known, f"not settings: {sorted(used - known)}"


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in setting_names() if f"`{name}`" not in readme]
    assert not missing, f"README's configuration table lacks {missing}"


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_weft_parse_console_script(tmp_path: Path) -> None:
    """`weft parse` prints one JSON object per message and exits 0; a bad file exits 2."""
    import json
    import subprocess
    import sys

    from tests.support.exports import memotrace_txt

    export = tmp_path / "chat.txt"
    export.write_bytes(memotrace_txt(3))
    weft = [sys.executable, "-m", "server.cli"]
    done = subprocess.run([*weft, "parse", str(export)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [m["sender"] for m in lines] == ["张三", "我", "张三"]
    assert {"sender", "timestamp", "text", "kind", "is_self", "raw"} <= set(lines[0])
    assert lines[0]["timestamp"] == "2024-01-15T09:00:00+08:00"
    (tmp_path / "junk.txt").write_bytes(b"\x00\x01\x02" * 100)
    bad = subprocess.run(
        [*weft, "parse", str(tmp_path / "junk.txt")], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr
