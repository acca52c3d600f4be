"""Emotions through the command line (real subprocesses, tiny seeded models): `myna voices references`
for every kind of voice, and `myna say --emotion / --emotion-ref / --references` end to end."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import numpy as np
import pytest
import soundfile

from myna.audit import AuditLog
from myna.voices import Consent, VoiceRegistry
from myna.voices.references import ReferenceFolder

HAPPY_TEXT = "What a lovely day it is."
COMMON = ["--lang", "en", "--seed", "3", "--max-tokens", "24", "--split", "cut0"]


def myna(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "myna", *args], capture_output=True, timeout=600,
                          env={**os.environ, **(env or {})})


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    return proc.stdout.decode()


@pytest.fixture(scope="module")
def voice_home(tiny_set, tmp_path_factory):
    """A data folder holding a trained voice `anna` (voice.json naming the tiny models) with a happy reference."""
    data = tmp_path_factory.mktemp("data")
    folder = data / "trained" / "anna"
    folder.mkdir(parents=True)
    record = {key: str(tiny_set[key]) for key in ("gpt", "sovits", "hubert", "bert")}
    record.update(ref=str(tiny_set["clips"][0]), ref_text="This is my reference voice.", ref_lang="en")
    (folder / "voice.json").write_text(json.dumps(record))
    added = myna("voices", "references", "add", "--voice", "anna", "--data-dir", str(data), str(tiny_set["clips"][1]),
                 "--emotion", "happy", "--text", HAPPY_TEXT, "--lang", "en")
    return data, ok(added).strip()


def say(out, *args: str, env: dict | None = None) -> tuple[np.ndarray, str]:
    proc = myna("say", "Great news, it works!", "-o", str(out), *COMMON, *args, env=env)
    ok(proc)
    return soundfile.read(out, dtype="float32")[0], proc.stderr.decode()


def test_references_of_a_trained_voice_and_of_a_folder(voice_home, tiny_set, tmp_path):
    data, ref_id = voice_home
    listed = json.loads(ok(myna("voices", "references", "list", "--voice", "anna", "--data-dir", str(data), "--json")))
    assert [(r["id"], r["emotion"], r["text"], r["lang"]) for r in listed] == [(ref_id, "happy", HAPPY_TEXT, "en")]
    assert (data / "trained" / "anna" / "references.json").is_file()
    folder = tmp_path / "refs"
    add = ["voices", "references", "add", "--dir", str(folder), str(tiny_set["clips"][1]), "--lang", "en"]
    ok(myna(*add, "--emotion", "Calm", "--text", "Easy now."))
    refused = myna(*add, "--emotion", "calm", "--text", "Again.")
    assert refused.returncode == 1 and b"already has a 'calm' reference" in refused.stderr
    assert b"Traceback" not in refused.stderr
    assert [ref.emotion for ref in ReferenceFolder(folder).list()] == ["calm"]
    assert ok(myna("voices", "references", "rm", "--dir", str(folder), "calm")).startswith("removed ")
    assert ReferenceFolder(folder).list() == []
    bad = myna("voices", "references", "add", "--dir", str(folder), str(tiny_set["clips"][1]), "--lang", "en",
               "--emotion", "very happy", "--text", "Hi.")
    assert bad.returncode == 1 and b"not usable" in bad.stderr and b"Traceback" not in bad.stderr


def test_references_of_a_registered_voice_under_its_consent_rules(tiny_set, tmp_path):
    data = tmp_path / "data"
    with VoiceRegistry(data / "voices") as registry:
        voice = registry.create(tiny_set["clips"][0].read_bytes(), "main.wav", "Main.", "en", "ada",
                                Consent("Ada", "I agree to my voice being cloned."))
    base = ["voices", "references"]
    target = ["--voice-id", voice.id, "--data-dir", str(data)]
    add = [*base, "add", *target, str(tiny_set["clips"][1]), "--emotion", "whisper", "--text", "Psst.", "--lang", "en"]
    # captcha consent (the default): a new clip of the voice needs a consent recording, as a new voice does
    refused = myna(*add)
    assert refused.returncode == 1 and b"consent recording" in refused.stderr and b"Traceback" not in refused.stderr
    record_mode = {"MYNA_CONSENT_MODE": "record"}
    ref_id = ok(myna(*add, env=record_mode)).strip()
    assert [r["id"] for r in json.loads(ok(myna(*base, "list", *target, "--json")))] == [ref_id]
    assert (data / "voices" / "clips" / voice.id / "refs" / f"{ref_id}.wav").is_file()
    ok(myna(*base, "rm", *target, ref_id, env=record_mode))
    assert not (data / "voices" / "clips" / voice.id / "refs" / f"{ref_id}.wav").exists()
    log = AuditLog(data / "audit" / "audit.jsonl")
    assert [(r.event, r.voice, r.data["reference"]) for r in log.records()] == [
        ("voice.reference.add", voice.id, ref_id), ("voice.reference.remove", voice.id, ref_id)]
    assert log.verify().ok and "Psst" not in log.path.read_text()  # the transcript stays out of the log
    unknown = myna(*base, "list", "--voice-id", uuid.uuid4().hex, "--data-dir", str(data))
    assert unknown.returncode == 1 and b"no voice with id" in unknown.stderr


def test_say_routes_the_emotion_clip_whichever_way_it_is_given(voice_home, tiny_set, tmp_path):
    data, _ = voice_home
    main, happy = (str(clip) for clip in tiny_set["clips"])
    models = ["--gpt", str(tiny_set["gpt"]), "--sovits", str(tiny_set["sovits"]), "--hubert", str(tiny_set["hubert"])]
    plain, _ = say(tmp_path / "plain.wav", "--voice", "anna", "--data-dir", str(data))
    # the trained voice's happy reference, and the same clip given once with --ref and models named one by one
    stored, notes = say(tmp_path / "stored.wav", "--voice", "anna", "--data-dir", str(data), "--emotion", "happy")
    one_off, _ = say(tmp_path / "oneoff.wav", *models, "--ref", main, "--ref-text", "This is my reference voice.",
                     "--ref-lang", "en", "--emotion-ref", happy, "--emotion-ref-text", HAPPY_TEXT)
    assert np.array_equal(stored, one_off) and not np.array_equal(stored, plain)
    assert "emotion reference" not in notes
    # a label the voice lacks: the main clip, and a note says so
    angry, notes = say(tmp_path / "angry.wav", "--voice", "anna", "--data-dir", str(data), "--emotion", "angry")
    assert np.array_equal(angry, plain)
    assert "note: no 'angry' emotion reference for this voice" in notes


def test_say_with_the_default_voice_s_references(tiny_set, tmp_path):
    folder = tmp_path / "default"
    folder.mkdir()
    for name, key in (("s1.ckpt", "gpt"), ("s2.pth", "sovits"), ("hubert", "hubert")):
        (folder / name).symlink_to(tiny_set[key])
    shutil.copy(tiny_set["clips"][0], folder / "ref.wav")
    (folder / "voice.json").write_text(json.dumps({"gpt": "s1.ckpt", "sovits": "s2.pth", "hubert": "hubert",
                                                   "ref": "ref.wav", "ref_text": "Main.", "ref_lang": "en"}))
    env = {"MYNA_DEFAULT_VOICE": str(folder)}
    ok(myna("voices", "references", "add", "--default-voice", str(tiny_set["clips"][1]), "--emotion", "happy",
            "--text", HAPPY_TEXT, "--lang", "en", env=env))
    mixed, notes = say(tmp_path / "t.wav", "--emotion", "happy", "--emotion-strength", "0.5", env=env)
    assert mixed.size and "note: no" not in notes
    bad = myna("say", "Hi.", "-o", str(tmp_path / "x.wav"), "--emotion-ref", str(tiny_set["clips"][1]), env=env)
    assert bad.returncode == 1 and b"--emotion-ref-text" in bad.stderr and not (tmp_path / "x.wav").exists()
