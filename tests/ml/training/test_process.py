"""The child process: events relayed, hard cancel, and the child's errors raised in the parent."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from ml.training import (
    TrainConfig,
    TrainingCrashed,
    TrainingError,
    TrainingProcess,
    is_complete,
)
from tests.ml.training.support import pair_rows, write_jsonl


@pytest.mark.slow
async def test_a_run_in_the_child_streams_events_and_returns_its_result(
    tiny_model: Path, tmp_path: Path
) -> None:
    train_file = write_jsonl(tmp_path / "train.jsonl", pair_rows())
    config = TrainConfig(max_steps=6, batch_size=2, logging_steps=2, eval_every_steps=3)
    events: list[dict[str, Any]] = []

    with TrainingProcess(config, str(tiny_model), train_file, train_file, tmp_path / "out") as run:
        run.start()
        async for event in run.aevents():
            events.append(event)

    assert [e["type"] for e in events] == [
        "start", "log", "eval", "log", "log", "eval", "done"
    ]  # fmt: skip
    assert [e["step"] for e in events if e["type"] == "log"] == [2, 4, 6]
    assert run.result is not None
    assert run.result.metrics["steps"] == 6
    assert run.result.output_dir == tmp_path / "out"
    assert is_complete(tmp_path / "out")
    assert run.finished


@pytest.mark.slow
async def test_cancel_stops_the_child_at_once_and_leaves_no_marker(
    tiny_model: Path, tmp_path: Path
) -> None:
    train_file = write_jsonl(tmp_path / "train.jsonl", pair_rows())
    config = TrainConfig(max_steps=1_000_000, batch_size=2, logging_steps=1)
    run = TrainingProcess(config, str(tiny_model), train_file, None, tmp_path / "out").start()

    steps = []
    async for event in run.aevents():
        if event["type"] == "log":
            steps.append(event["step"])
            if len(steps) == 3:
                await run.acancel()

    assert steps == [1, 2, 3]
    assert run.cancelled and run.finished
    assert run.result is None
    assert not is_complete(tmp_path / "out")
    assert run.poll() == []
    with pytest.raises(ProcessLookupError):
        os.kill(run.pid or 0, 0)  # reaped: the process no longer exists
    run.close()


@pytest.mark.slow
def test_a_bad_base_path_raises_the_childs_clear_error(pairs_file: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    run = TrainingProcess(TrainConfig(max_steps=1), str(missing), pairs_file, None, tmp_path / "o")

    with run, pytest.raises(TrainingError) as raised:
        run.start().wait()

    assert type(raised.value) is TrainingError
    assert str(raised.value) == f"base model path {missing} does not exist"
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_child_killed_from_outside_is_reported_as_a_crash(
    tiny_model: Path, tmp_path: Path
) -> None:
    train_file = write_jsonl(tmp_path / "train.jsonl", pair_rows())
    config = TrainConfig(max_steps=1_000_000, batch_size=2, logging_steps=1)

    with TrainingProcess(config, str(tiny_model), train_file, None, tmp_path / "out") as run:
        run.start()
        for event in run.events():
            if event["type"] == "log":
                break
        os.kill(run.pid or 0, signal.SIGKILL)
        with pytest.raises(TrainingCrashed, match="killed by SIGKILL"):
            run.wait()
