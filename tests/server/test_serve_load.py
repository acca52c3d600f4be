"""benchmarks/serve_load.py runs against a real server and prints every figure (numbers are not asserted)."""

import subprocess
import sys
from pathlib import Path

from conftest import TTS_KEY

ROOT = Path(__file__).resolve().parents[2]


def test_serve_load_prints_its_figures(server):
    proc = subprocess.run(
        [sys.executable, "benchmarks/serve_load.py", "--url", server.url, "--clients", "3", "--duration", "5",
         "--max-requests", "4", "--ref", "ref0.wav", "--text", "Hello there.", "--api-key", TTS_KEY],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    figures = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line.strip()}
    assert {"throughput_rps", "latency_p50_s", "latency_p95_s", "first_chunk_p50_s", "first_chunk_p95_s"} <= set(figures)
    assert figures["requests"][0] == "4" and figures["statuses"] == ["200:", "4"]
