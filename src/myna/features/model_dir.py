"""Local model directories: the check every encoder makes before reading one (no torch needed)."""

from __future__ import annotations

from pathlib import Path

from myna.errors import MynaError


class ModelDirError(MynaError):
    """A local model directory is missing or incomplete."""


def check_model_dir(path: str | Path, required: tuple[str, ...], what: str) -> Path:
    """Return `path` if it is a directory holding every file in `required`, else raise with the fix."""
    path = Path(path)
    if not path.is_dir():
        raise ModelDirError(f"{path}: no such directory; point to a local {what} directory")
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        raise ModelDirError(f"{path}: not a {what} directory: missing {', '.join(missing)}")
    return path
