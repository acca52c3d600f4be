"""Emotion references: in a voice folder (references.json) and in the registry (with the voice, erased with it)."""

import importlib.util
import io
import json
import sqlite3
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile

from myna.audio.io import AudioError
from myna.errors import InputError
from myna.voices import Consent, UnknownVoiceError, VoiceRegistry
from myna.voices.references import REFERENCES_FILE, ReferenceFolder
from myna.voices.registry_references import RegistryReferences, UnknownReferenceError

_spec = importlib.util.spec_from_file_location("test_registry", Path(__file__).parent / "test_registry.py")
_registry_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_registry_tests)
wav_bytes, all_bytes = _registry_tests.wav_bytes, _registry_tests.all_bytes
KEY = bytes(range(32))


def consent() -> Consent:
    return Consent(subject="Ada Lovelace", statement="I agree to clone my voice for narration")


# -- a voice folder -------------------------------------------------------------------------------


def test_folder_add_list_remove(tmp_path):
    folder = ReferenceFolder(tmp_path / "voice")
    assert folder.list() == []
    happy = folder.add(wav_bytes(seed=1), "h.wav", " What a lovely day! ", "en", "Happy")
    sad = folder.add(wav_bytes(seed=2, seconds=3.5), "s.flac", "好难过。", "zh", "sad")
    assert (happy.emotion, happy.text, happy.lang) == ("happy", "What a lovely day!", "en")
    assert folder.list() == [happy, sad]
    manifest = json.loads((tmp_path / "voice" / REFERENCES_FILE).read_text(encoding="utf-8"))
    assert manifest["references"][1]["clip"] == f"references/sad-{sad.id}.wav"  # relative: the folder can move
    data, rate = soundfile.read(sad.clip, dtype="float32")
    assert rate == 16000 and data.ndim == 1 and abs(len(data) / rate - 3.5) < 1e-3
    assert folder.remove("happy") == [happy]
    assert not happy.clip.exists() and [r.id for r in folder.list()] == [sad.id]
    assert folder.remove(sad.id) == [sad]
    assert folder.list() == [] and list((tmp_path / "voice" / "references").iterdir()) == []


def test_folder_one_reference_per_label_unless_replaced(tmp_path):
    folder = ReferenceFolder(tmp_path)
    first = folder.add(wav_bytes(seed=1), "a.wav", "One.", "en", "calm")
    with pytest.raises(InputError, match="already has a 'calm' reference"):
        folder.add(wav_bytes(seed=2), "b.wav", "Two.", "en", "calm")
    second = folder.add(wav_bytes(seed=2), "b.wav", "Two.", "en", "calm", replace=True)
    assert folder.list() == [second] and not first.clip.exists()


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"emotion": "very happy"}, InputError, "not usable"),
    ({"emotion": "auto"}, InputError, "auto"),
    ({"text": "  "}, InputError, "needs its transcript"),
    ({"lang": "fr"}, InputError, "unsupported language"),
    ({"audio": wav_bytes(seconds=1.0)}, AudioError, "at least 3 s"),
    ({"audio": b"not audio"}, AudioError, "not a readable audio file"),
])
def test_folder_refuses_bad_references_and_stores_nothing(tmp_path, kwargs, error, message):
    args = {"audio": wav_bytes(), "filename": "x.wav", "text": "Hello there.", "lang": "en", "emotion": "happy",
            **kwargs}
    with pytest.raises(error, match=message):
        ReferenceFolder(tmp_path).add(**args)
    assert list(tmp_path.iterdir()) == []


def test_hand_written_manifest(tmp_path):
    clip = tmp_path / "elsewhere.wav"
    clip.write_bytes(wav_bytes())
    (tmp_path / "voice").mkdir()
    (tmp_path / "voice" / REFERENCES_FILE).write_text(json.dumps(
        {"references": [{"emotion": "Whisper", "clip": str(clip), "text": "psst", "lang": "en"}]}))
    (ref,) = ReferenceFolder(tmp_path / "voice").list()
    assert (ref.id, ref.emotion, ref.clip, ref.seconds) == ("elsewhere", "whisper", clip, None)
    ReferenceFolder(tmp_path / "voice").remove("whisper")
    assert clip.exists()  # a clip the folder did not store is left alone


@pytest.mark.parametrize(("content", "message"), [
    ("{", "not a readable references file"),
    ('{"refs": []}', "expected"),
    ('{"references": [{"emotion": "happy"}]}', "'clip' is missing"),
    ('{"references": [{"emotion": "x y", "clip": "a.wav", "text": "t", "lang": "en"}]}', "reference 1"),
    ('{"references": [{"emotion": "a", "clip": "a.wav", "text": "t", "lang": "en"},'
     ' {"emotion": "a", "clip": "b.wav", "text": "t", "lang": "en"}]}', "two references are labelled"),
])
def test_broken_manifests_are_explained(tmp_path, content, message):
    (tmp_path / REFERENCES_FILE).write_text(content)
    with pytest.raises(InputError, match=message):
        ReferenceFolder(tmp_path).list()


# -- the registry ---------------------------------------------------------------------------------


def test_registry_references_live_with_the_voice_and_survive_restarts(tmp_path):
    with VoiceRegistry(tmp_path) as registry:
        voice = registry.create(wav_bytes(seed=1), "v.wav", "Main words.", "en", "ada", consent())
        refs = RegistryReferences(registry)
        happy = refs.add(voice.id, wav_bytes(seed=2), "h.wav", "So happy!", "en", "happy")
        assert refs.list(voice.id) == [happy] and refs.get(voice.id, "happy") == happy
        path = refs.clip_path(voice.id, happy.id)
        assert path.parent.parent.name == voice.id and soundfile.info(path).frames > 0
        refs.close()
    with VoiceRegistry(tmp_path) as registry:  # a restart keeps the references (the registry's sweep leaves refs/)
        refs = RegistryReferences(registry)
        (engine_ref,) = refs.references(voice.id)
        assert (engine_ref.id, engine_ref.emotion, engine_ref.text, engine_ref.clip) == (happy.id, "happy", "So happy!", path)
        with pytest.raises(InputError, match="already has a 'happy' reference"):
            refs.add(voice.id, wav_bytes(seed=3), "h2.wav", "Again!", "en", "happy")
        removed = refs.remove(voice.id, "happy")
        assert removed.id == happy.id and refs.list(voice.id) == [] and not path.exists()
        with pytest.raises(UnknownReferenceError):
            refs.get(voice.id, "happy")
        with pytest.raises(UnknownVoiceError):
            refs.add(uuid.uuid4().hex, wav_bytes(), "x.wav", "Hi.", "en", "happy")
        refs.close()


def test_deleting_the_voice_erases_its_references(tmp_path):
    tag = uuid.uuid4().hex[:10]
    registry = VoiceRegistry(tmp_path)
    keep = registry.create(wav_bytes(seed=1), "k.wav", "kept", "en", "keeper", consent())
    gone = registry.create(wav_bytes(seed=2), "g.wav", "gone", "en", "goner", consent())
    refs = RegistryReferences(registry)
    kept = refs.add(keep.id, wav_bytes(seed=3), "a.wav", "Kept words.", "en", "calm")
    refs.add(gone.id, wav_bytes(seed=4), "b.wav", f"Secret sad words {tag}.", "en", "sad")
    refs.add(gone.id, wav_bytes(seed=5), "c.wav", f"Secret angry words {tag}.", "en", "angry")
    registry.delete(gone.id)
    with pytest.raises(UnknownVoiceError):
        refs.list(gone.id)
    assert refs.list(keep.id) == [kept]
    refs.close()
    registry.close()
    for name, content in all_bytes(tmp_path).items():
        assert gone.id not in name and tag.encode() not in content, f"{name} keeps the deleted voice's references"
    db = sqlite3.connect(tmp_path / "voices.sqlite3")
    assert db.execute("SELECT voice_id, emotion FROM voice_references").fetchall() == [(keep.id, "calm")]
    db.close()


def test_encrypted_references(tmp_path):
    tag = uuid.uuid4().hex[:10]
    with VoiceRegistry(tmp_path, key=KEY) as registry:
        voice = registry.create(wav_bytes(seed=1), "v.wav", "Main.", "en", "ada", consent())
        refs = RegistryReferences(registry)
        ref = refs.add(voice.id, wav_bytes(seed=2), "h.wav", f"Happy words {tag}.", "en", "happy")
        stored = next((tmp_path / "clips" / voice.id / "refs").iterdir())
        assert stored.name.endswith(".wav.enc") and b"RIFF" not in stored.read_bytes()[:64]
        plain = refs.clip_path(voice.id, ref.id)
        expected, _ = soundfile.read(io.BytesIO(wav_bytes(seed=2)), dtype="float32")
        assert np.array_equal(soundfile.read(plain, dtype="float32")[0], expected)
        refs.close()
    for name, content in all_bytes(tmp_path).items():
        assert tag.encode() not in content, f"the transcript is readable in {name}"
    with VoiceRegistry(tmp_path, key=KEY) as registry:
        assert RegistryReferences(registry).get(voice.id, "happy").transcript == f"Happy words {tag}."
        registry.delete(voice.id)
        assert not plain.exists()  # the registry's erasure removes the decrypted copy too


def test_clips_without_a_row_are_swept_on_open(tmp_path):
    with VoiceRegistry(tmp_path) as registry:
        voice = registry.create(wav_bytes(seed=1), "v.wav", "Main.", "en", "ada", consent())
        refs = RegistryReferences(registry)
        ref = refs.add(voice.id, wav_bytes(seed=2), "h.wav", "Happy.", "en", "happy")
        orphan = tmp_path / "clips" / voice.id / "refs" / "0123456789ab.wav"
        orphan.write_bytes(wav_bytes(seed=3))
        refs.close()
        RegistryReferences(registry).close()
        assert not orphan.exists() and refs_file(tmp_path, voice.id, ref.id).exists()


def refs_file(root, voice_id, ref_id):
    return root / "clips" / voice_id / "refs" / f"{ref_id}.wav"
