"""Process locks on files (flock): one process per training run, one campaign supervisor. The
holder writes its pid into the file, so others can tell who holds it; the lock dies with the
process, so a killed run never leaves a stale lock behind."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


def hold(path: Path) -> IO[str] | None:
    """Take the lock for the life of this process (keep the returned handle), or None if
    another process holds it."""
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def holder(path: Path) -> int | None:
    """The pid of the process holding the lock (-1 if it wrote none yet), or None if nobody does."""
    if not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None
