"""What a killed worker left in the scratch folders goes at the next start; nothing younger."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tasks.scratch import MAX_AGE_SECONDS, sweep_scratch


def test_stale_scratch_is_removed_and_recent_scratch_kept(tmp_path: Path) -> None:
    old = time.time() - MAX_AGE_SECONDS - 60
    spooled = tmp_path / "spool" / "abc.upload"
    training = tmp_path / "scratch" / "train-abc"
    recent = tmp_path / "scratch" / "train-now"
    for folder in (spooled.parent, training / "checkpoint", recent):
        folder.mkdir(parents=True, exist_ok=True)
    spooled.write_bytes(b"chat")
    (training / "checkpoint" / "weights.bin").write_bytes(b"w")
    for path in (spooled, training):
        os.utime(path, (old, old))
    models = tmp_path / "models" / "m1"  # the model cache is not scratch
    models.mkdir(parents=True)
    os.utime(models, (old, old))

    assert sweep_scratch(tmp_path) == 2
    assert not spooled.exists() and not training.exists()
    assert recent.is_dir() and models.is_dir()
    assert sweep_scratch(tmp_path / "nowhere") == 0


def test_scratch_outlives_every_job() -> None:
    assert MAX_AGE_SECONDS > 48 * 3600  # train_model may run for two days
