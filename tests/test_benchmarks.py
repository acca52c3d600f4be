"""The benchmark commands keep running (numbers are printed, not asserted: speed is not a test)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_text_parity_prints_a_row_per_language():
    out = run("benchmarks/text_parity.py", "--show", "0")
    rows = {line.split()[0] for line in out.splitlines()[1:] if line and not line.startswith(" ")}
    assert {"zh", "en", "ja"} <= rows


def test_engine_benchmark_prints_every_figure():
    out = run("benchmarks/engine.py", "--tokens", "12", "--repeats", "1", "--threads", "1")
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"t2s_tokens_per_s", "sovits_rtf", "end_to_end_rtf", "peak_rss_mb"} <= names
