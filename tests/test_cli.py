"""`myna phonemes` end to end, through a real subprocess."""

import json
import subprocess
import sys

import pytest

from myna.text import g2p

KEYS = {"phones", "ids", "word2ph", "norm_text"}


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "myna", *args], input=stdin, capture_output=True, timeout=300)


def records(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]


def test_text_argument_prints_one_record():
    proc = run("phonemes", "--lang", "zh", "你好，世界。")
    assert proc.returncode == 0, proc.stderr
    (record,) = records(proc)
    assert set(record) == KEYS
    assert record == g2p("你好，世界。", "zh").to_dict()


def test_stdin_gives_one_record_per_line_in_order():
    lines = ["Hello there.", "", "The 2nd test costs $5.", "Good bye!"]
    proc = run("phonemes", "--lang", "en", stdin="\n".join(lines).encode() + b"\n")
    assert proc.returncode == 0, proc.stderr
    got = records(proc)
    assert got == [g2p(text, "en").to_dict() for text in lines]
    assert all(record["word2ph"] is None for record in got)


def test_many_lines_in_one_process():
    lines = [f"第{i}行，共有{i * 3}个字。" for i in range(300)]
    proc = run("phonemes", "--lang", "zh", stdin="\n".join(lines).encode())
    assert proc.returncode == 0, proc.stderr
    assert len(records(proc)) == 300


def test_v1_and_japanese():
    proc = run("phonemes", "--lang", "ja", "--version", "v1", "こんにちは")
    assert proc.returncode == 0, proc.stderr
    assert records(proc) == [g2p("こんにちは", "ja", "v1").to_dict()]


def test_mixed_mode():
    proc = run("phonemes", "--lang", "zh", "--mixed", "我用iPhone。")
    assert proc.returncode == 0, proc.stderr
    (record,) = records(proc)
    assert "F" in record["phones"]  # the English run was read as English


def test_invalid_utf8_line_is_reported_and_skipped():
    proc = run("phonemes", "--lang", "zh", stdin="你好\n".encode() + b"\xff\xfe bad\n" + "再见\n".encode())
    assert proc.returncode == 0
    got = records(proc)
    assert len(got) == 3 and got[1] == {"phones": [], "ids": [], "word2ph": None, "norm_text": ""}
    err = proc.stderr.decode()
    assert "line 2" in err and "UTF-8" in err and "Traceback" not in err


def test_wholly_unusable_input_fails():
    proc = run("phonemes", "--lang", "zh", stdin=b"\xff\n\xc3\n")
    assert proc.returncode == 1
    assert "none of the 2" in proc.stderr.decode()


def test_huge_line_is_a_clear_error_not_a_traceback():
    proc = run("phonemes", "--lang", "en", stdin=b"a" * 1_000_000 + b"\n")
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "limit" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["--lang", "fr", "x"], ["--lang", "zh", "--version", "v9", "x"]])
def test_bad_options_fail_clearly(args):
    proc = run("phonemes", *args)
    assert proc.returncode == 1
    assert proc.stdout == b"" and b"Traceback" not in proc.stderr and proc.stderr


def test_empty_stdin_prints_nothing():
    proc = run("phonemes", "--lang", "ja")
    assert proc.returncode == 0 and proc.stdout == b""
