"""Project rules that code review alone would let slip: one reader of the environment, no sys.path edits."""

import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "myna"
ENV_READ = re.compile(r"\bos\.environ\b|\bos\.getenv\b|\bgetenv\(")
PATH_EDIT = re.compile(r"\bsys\.path\b")


def _sources():
    return sorted(SRC.rglob("*.py"))


def test_only_config_reads_the_environment():
    offenders = [str(p.relative_to(SRC)) for p in _sources()
                 if p.name != "config.py" and ENV_READ.search(p.read_text(encoding="utf-8"))]
    assert offenders == [], f"read MYNA_* settings through myna.config, not in {offenders}"


def test_no_module_edits_sys_path():
    offenders = [str(p.relative_to(SRC)) for p in _sources() if PATH_EDIT.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
