"""Writing a file so that readers see the old file or the whole new one, never a part of it.

The new content goes to a uniquely named temporary file beside the target (the same folder, so the
rename is atomic on POSIX filesystems), which then replaces the target with `os.replace`; on any
error the temporary file is removed and the target is left as it was. `durable=True` also flushes
the file to disk before the rename and the folder after it, so the new file survives a power cut
(personal data in the voice registry); caches and checkpoints that can be recomputed skip that cost.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644  # temporary files are created owner-only (0600); ordinary data is world-readable


@contextmanager
def atomic_output(path: str | Path, *, mode: int | None = FILE_MODE, durable: bool = False,
                  parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; a clean exit renames it over `path` (with `mode`,
    None = as written), an exception removes it. `parents` creates missing folders first (off by default:
    a folder erased meanwhile must not come back)."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        if mode is not None:
            os.chmod(partial, mode)
        if durable:
            _sync(partial, os.O_RDONLY)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if durable:
        _sync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def atomic_write(path: str | Path, data: bytes | str, *, mode: int | None = FILE_MODE, durable: bool = False,
                 parents: bool = False) -> None:
    """Replace `path` with `data` (text is written as UTF-8, line ends as given) in one step."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_output(path, mode=mode, durable=durable, parents=parents) as partial:
        partial.write_bytes(payload)


def _sync(path: Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
