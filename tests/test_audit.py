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


def test_the_log_files_are_private(tmp_path):
    path = tmp_path / "audit" / "audit.jsonl"  # the log's folder does not exist yet
    log = _filled(path, KEY)
    log.erase("v1")  # rewrites the log through a temporary file
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    files = sorted(path.parent.iterdir())
    assert [p.name for p in files] == ["audit.jsonl", "audit.jsonl.head", "audit.jsonl.lock"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files), [oct(p.stat().st_mode) for p in files]


def test_personal_fields_are_sealed_with_a_personal_key(tmp_path):
    path = tmp_path / "audit.jsonl"
    voice_key = bytes(range(1, 33))
    log = AuditLog(path, KEY, personal_key=voice_key)
    log.append("voice.create", actor="admin", voice="v1", personal={"name": "Anna", "subject": "Anna Example"})
    log.append("voice.create", actor="admin", voice="v2", personal={"name": "Bo"})
    text = path.read_text()
    assert "Anna" not in text and '"sealed"' in text and log.verify().ok
    first = next(log.records())
    assert log.readable(first).personal["fields"] == {"name": "Anna", "subject": "Anna Example"}
    with pytest.raises(AuditError, match="sealed"):
        AuditLog(path, KEY).readable(first)  # without the key they stay closed
    with pytest.raises(AuditError, match="do not open"):
        AuditLog(path, KEY, personal_key=bytes(32)).readable(first)
    moved = json.loads(_lines(path)[1])  # v2's sealed fields copied onto v1's record do not open there
    assert moved["personal"]["sealed"] != first.personal["sealed"]
    swapped = AuditLog(path, KEY, personal_key=voice_key)
    with pytest.raises(AuditError, match="do not open"):
        swapped.readable(type(first)(**{**first.__dict__, "personal": moved["personal"]}))
    assert log.erase("v1") == 1 and log.verify().ok
    assert log.readable(next(log.records())).personal is None


def test_cli_show_opens_sealed_fields_with_the_voice_key(tmp_path, monkeypatch, capsys):
    from myna.cli import main

    key_file = tmp_path / "voice.key"
    key_file.write_text("ef" * 32)
    path = tmp_path / "audit.jsonl"
    AuditLog(path, personal_key=bytes.fromhex("ef" * 32)).append("voice.create", voice="v1", personal={"name": "Anna"})
    monkeypatch.delenv("MYNA_MODEL_KEY_FILE", raising=False)
    monkeypatch.delenv("MYNA_MODEL_KEY", raising=False)
    monkeypatch.setenv("MYNA_ENCRYPT_VOICES", "off")
    assert main(["audit", "show", "--log", str(path)]) == 0
    assert "Anna" not in capsys.readouterr().out  # no key: the fields stay sealed
    monkeypatch.setenv("MYNA_ENCRYPT_VOICES", "auto")
    monkeypatch.setenv("MYNA_VOICE_KEY_FILE", str(key_file))
    assert main(["audit", "show", "--log", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["personal"]["fields"] == {"name": "Anna"}


def test_cli_find_prints_the_synthesis_records_of_a_payload(tmp_path, monkeypatch, capsys):
    from myna.cli import main

    path = tmp_path / "audit.jsonl"
    log = _filled(path)
    record_synthesis(log, voice="v2", actor="key-b", text="Again.", payload=0xDEADBEEF, format="mp3", cache="hit")
    record_synthesis(log, voice="v2", actor="key-b", text="Other.", payload=7)
    log.append("admin.note", data={"watermark": 7})  # not a synthesis: never a match
    monkeypatch.setenv("MYNA_ENCRYPT_VOICES", "off")
    assert main(["audit", "find", "--log", str(path), "--payload", "0xdeadbeef"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["actor"], r["voice"], r["data"]["format"]) for r in found] == [("key-a", "v1", "wav"), ("key-b", "v2", "mp3")]
    detected = tmp_path / "detected.jsonl"  # what `myna watermark detect` prints, one line per file
    detected.write_text(json.dumps({"file": "a.wav", "watermarked": True, "confidence": 1.0, "payload": 7}) + "\n"
                        + json.dumps({"file": "b.wav", "watermarked": False, "confidence": 0.1, "payload": None}) + "\n")
    assert main(["audit", "find", "--log", str(path), "--detected", str(detected)]) == 0
    assert [json.loads(line)["data"]["text_hash"] for line in capsys.readouterr().out.splitlines()] == [
        log.hash_text("Other.")]
    assert main(["audit", "find", "--log", str(path), "--payload", "0"]) == 1
    assert "no synthesis record carries payload 0" in capsys.readouterr().err
    detected.write_text("not json\n")
    assert main(["audit", "find", "--log", str(path), "--detected", str(detected)]) == 1
    assert "not a line of `myna watermark detect` output" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["audit", "find", "--log", str(path), "--payload", str(2**32)])


def test_a_missing_log_does_not_verify(tmp_path):
    missing = tmp_path / "typo.jsonl"
    assert not AuditLog(missing).verify().ok
    cli = subprocess.run([sys.executable, "-m", "myna", "audit", "verify", "--log", str(missing)],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1 and "no audit log" in cli.stdout
    path = tmp_path / "audit.jsonl"
    _filled(path)
    path.unlink()  # deleted whole, its head anchor left behind
    problems = AuditLog(path).verify().problems
    assert any("no audit log" in p for p in problems) and any("head anchor" in p for p in problems)
