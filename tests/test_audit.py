"""The audit trail: every kind of tampering is caught, erasure keeps the chain, concurrent appends are safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from myna.audit import AuditError, AuditLog, record_synthesis

KEY = bytes(range(32))


def _filled(path: Path, key: bytes | None = None) -> AuditLog:
    log = AuditLog(path, key)
    log.append("voice.create", actor="admin", voice="v1", data={"consent": {"recording_sha256": "ab" * 32}},
               personal={"name": "Anna", "subject": "Anna Example", "statement": "I agree."})
    log.append("voice.create", actor="admin", voice="v2", data={}, personal={"name": "Bo"})
    record_synthesis(log, voice="v1", actor="key-a", text="Hello there.", payload=0xDEADBEEF, format="wav")
    log.append("voice.update", actor="admin", voice="v1", data={"version": 2}, personal={"transcript": "hi"})
    log.append("admin.reload", actor="admin")
    return log


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_an_untouched_log_verifies(tmp_path):
    log = _filled(tmp_path / "audit.jsonl")
    report = log.verify()
    assert report.ok and report.records == 5 and report.problems == []
    head = log.head()
    assert head["seq"] == 5 and head["hash"] == report.head
    assert [r.seq for r in log.records()] == [1, 2, 3, 4, 5]
    synthesis = [r for r in log.records() if r.event == "synthesis"][0]
    assert synthesis.data["watermark"] == 0xDEADBEEF and "Hello" not in synthesis.line()


def _edit(lines):
    body = json.loads(lines[2])
    body["data"]["watermark"] = 1
    return lines[:2] + [json.dumps(body)] + lines[3:]


def _edit_personal(lines):
    body = json.loads(lines[0])
    body["personal"]["fields"]["subject"] = "Someone Else"
    return [json.dumps(body)] + lines[1:]


TAMPERING = {
    "edited": _edit,
    "personal field edited": _edit_personal,
    "deleted": lambda lines: lines[:1] + lines[2:],
    "inserted": lambda lines: lines[:2] + [lines[1]] + lines[2:],
    "reordered": lambda lines: [lines[0], lines[2], lines[1], *lines[3:]],
    "truncated": lambda lines: lines[:-2],
    "first removed": lambda lines: lines[1:],
    "not json": lambda lines: lines[:1] + ["{oops"] + lines[2:],
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_tampering_is_detected(tmp_path, kind):
    path = tmp_path / "audit.jsonl"
    _filled(path)
    _write(path, TAMPERING[kind](_lines(path)))
    report = AuditLog(path).verify()
    assert not report.ok, kind
    cli = subprocess.run([sys.executable, "-m", "myna", "audit", "verify", "--log", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1 and "FAIL" in cli.stdout and "Traceback" not in cli.stderr


def test_appending_after_a_cut_is_refused(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = _filled(path)
    _write(path, _lines(path)[:-1])
    with pytest.raises(AuditError, match="head anchor"):
        log.append("admin.reload")


def test_a_crash_between_line_and_anchor_is_recovered(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = _filled(path)
    stale = log.head_path.read_text()
    log.append("admin.reload", actor="admin")
    log.head_path.write_text(stale)  # as if the process died after writing the line
    log.append("admin.reload", actor="admin")
    assert log.verify().ok and log.head()["seq"] == 7


def test_without_the_key_a_rewritten_chain_is_caught(tmp_path):
    """Someone who edits a line and recomputes every hash (and the head) cannot do so under an audit key."""
    path = tmp_path / "audit.jsonl"
    _filled(path, KEY)
    forger = AuditLog(tmp_path / "forged.jsonl")  # no key: plain SHA-256 chain
    for record in AuditLog(path, KEY).records():
        data = dict(record.data)
        if record.event == "synthesis":
            data["watermark"] = 7
        forger.append(record.event, actor=record.actor, voice=record.voice, data=data,
                      personal=record.personal["fields"] if record.personal else None)
    os.replace(forger.path, path)
    os.replace(forger.head_path, AuditLog(path).head_path)
    assert AuditLog(path).verify().ok  # consistent for anyone without the key
    report = AuditLog(path, KEY).verify()
    assert not report.ok and any("edited" in p for p in report.problems)
    assert any("MAC" in p for p in report.problems)


def test_expected_head_catches_a_consistent_rollback(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = _filled(path, KEY)
    earlier = f"{log.head()['seq']}:{log.head()['hash']}"
    lines, head = _lines(path), log.head_path.read_text()
    log.append("voice.delete", actor="admin", voice="v2")
    assert log.verify(expect_head=earlier).ok  # an earlier head is still in the log
    later = f"{log.head()['seq']}:{log.head()['hash']}"
    _write(path, lines)  # roll both files back to the earlier state
    log.head_path.write_text(head)
    assert log.verify().ok
    assert not log.verify(expect_head=later).ok


def test_erasure_removes_personal_content_and_keeps_the_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = _filled(path, KEY)
    assert "Anna" in path.read_text()
    assert log.erase("v1", actor="admin") == 2
    text = path.read_text()
    assert "Anna" not in text and "I agree" not in text and '"hi"' not in text
    assert "Bo" in text  # other voices keep theirs
    report = log.verify()
    assert report.ok and report.erased == 2 and report.records == 6
    last = list(log.records())[-1]
    assert last.event == "audit.erase" and last.voice == "v1" and last.data == {"records": 2}
    first = next(log.records())
    assert first.personal is None and first.commit  # the commitment stays, the content is gone


def test_concurrent_appends_from_several_processes(tmp_path):
    path = tmp_path / "audit.jsonl"
    code = (f"import sys; from myna.audit import AuditLog; log = AuditLog({str(path)!r})\n"
            "for i in range(40): log.append('synthesis', actor=sys.argv[1], data={'i': i})")
    procs = [subprocess.Popen([sys.executable, "-c", code, f"p{i}"]) for i in range(4)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    log = AuditLog(path)
    report = log.verify()
    assert report.ok, report.problems[:3]
    records = list(log.records())
    assert len(records) == 160 and [r.seq for r in records] == list(range(1, 161))
    assert {r.actor for r in records} == {"p0", "p1", "p2", "p3"}


def test_cli_head_show_erase(tmp_path):
    path = tmp_path / "audit.jsonl"
    _filled(path)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "myna", "audit", *args, "--log", str(path)],
                              capture_output=True, text=True, timeout=120)

    head = run("head")
    assert head.returncode == 0 and head.stdout.startswith("5:")
    shown = run("show", "--voice", "v1")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 3
    erased = run("erase", "v1")
    assert erased.returncode == 0 and json.loads(erased.stdout)["records_erased"] == 2
    verified = run("verify", "--expect-head", head.stdout.strip())
    assert verified.returncode == 0 and "ok" in verified.stdout
