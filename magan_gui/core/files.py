"""Writing output files so that a crash or a full disk never leaves a half-written file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError

# The process's umask, read once at import (reading it means setting it, which is not thread-safe
# later): a new output file gets the permissions a plain open() would give it, not mkstemp's 0600.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_atomically(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it.

    A crash mid-write leaves the previous file intact; a folder or disk that refuses the write
    raises OutputError naming the path.  The file gets the permissions of the file it replaces, or
    those a plain open() gives (readable by colleagues on a shared disk under the usual umask).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write there ({exc.strerror or exc})") from exc
    try:
        try:
            mode = path.stat().st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_UMASK
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: could not be written ({exc.strerror or exc})") from exc
        raise
    return path


def refuse_existing(*paths: str | Path, force: bool = False) -> None:
    """Raise OutputError if any of ``paths`` exists, unless ``force``: results are never replaced silently."""
    if force:
        return
    for p in paths:
        if Path(p).exists():
            raise OutputError(f"{p} already exists (use --force to overwrite)")
