"""Jobs' scratch space (cache/spool, cache/scratch): what a killed worker left there is removed
when a worker or the embedded server starts.

A job cleans up after itself, however it ends, unless its process is killed (SIGKILL, out of
memory, a power cut); then spooled uploads and training folders would stay for ever. Only what
is older than any job may run is removed, so another worker's files in use are never touched.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from tasks.registry import JOBS

log = logging.getLogger(__name__)

FOLDERS = ("spool", "scratch")
# Older than the longest job's time limit, with a day to spare.
MAX_AGE_SECONDS = max(definition.timeout for definition in JOBS.values()) + 24 * 3600


def sweep_scratch(cache_dir: Path, *, max_age: float = MAX_AGE_SECONDS) -> int:
    """Remove the scratch entries not modified for `max_age` seconds; how many were removed."""
    removed = 0
    now = time.time()
    for name in FOLDERS:
        folder = cache_dir / name
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            try:
                if now - entry.lstat().st_mtime < max_age:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
            except OSError:  # gone meanwhile, or not ours to remove: leave it
                log.warning("could not remove scratch entry %s", entry, exc_info=True)
    if removed:
        log.info("removed %d stale scratch entries from %s", removed, cache_dir)
    return removed
