"""This user's cache folders for files myna derives once and reuses (compiled kernels, prepared weights)."""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def user_cache_dir(name: str) -> Path | None:
    """~/.cache/myna/NAME, else a folder of this user's alone in the temporary directory; None if neither.

    What is read back from these folders runs (a kernel library) or decides the numbers (weights), so a
    fallback folder that others can write to is refused.
    """
    try:
        home = Path.home() / ".cache" / "myna" / name
        home.mkdir(parents=True, exist_ok=True)
        if os.access(home, os.W_OK):
            return home
    except (OSError, RuntimeError):  # RuntimeError: no home folder known for this user
        pass
    try:
        shared = Path(tempfile.gettempdir()) / f"myna-{name}-{os.getuid()}"
        shared.mkdir(mode=0o700, exist_ok=True)
        info = shared.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        log.warning("%s is not this user's alone: myna does not keep its %s there", shared, name)
        return None
    return shared
