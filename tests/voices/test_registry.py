"""Voice registry: storage, restarts, every refused upload, atomic failure, erasure, encryption, threads."""

import errno
import io
import os
import sqlite3
import threading
import uuid

import numpy as np
import pytest
import soundfile

from myna.audio.io import AudioError, read_audio, to_mono
from myna.errors import InputError, MynaError
from myna.voices import (
    Consent,
    UnknownVoiceError,
    VoiceKeyError,
    VoiceNameTaken,
    VoiceRecord,
    VoiceRegistry,
    VoiceStorageError,
)
from myna.voices import registry as registry_module
from myna.voices.crypto import generate_key, read_key
from myna.voices.store import VoiceStore

KEY = bytes(range(32))


def wav_bytes(seconds=4.0, rate=16000, channels=1, subtype="PCM_16", fill=None, seed=0) -> bytes:
    """A speech-length clip: a decaying tone plus noise, as WAV bytes."""
    frames = int(seconds * rate)
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    mono = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)) + 0.02 * rng.standard_normal(frames)
    data = np.stack([mono * (0.5 + 0.5 * c / max(channels, 1)) for c in range(channels)], axis=1).astype(np.float32)
    if fill is not None:
        data[frames // 2, 0] = fill
    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def consent(tag: str = "") -> Consent:
    return Consent(subject=f"Ada Lovelace {tag}", statement=f"I agree to clone my voice for narration {tag}",
                   obtained_by="studio-admin")  # fmt: skip


@pytest.fixture
def registry(tmp_path):
    with VoiceRegistry(tmp_path / "voices") as reg:
        yield reg


def all_bytes(root) -> dict[str, bytes]:
    """Every file under `root` with its content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_create_get_list_and_stored_clip(registry):
    stereo = wav_bytes(seconds=4.0, rate=22050, channels=2)
    record = registry.create(stereo, "me.wav", "  hello there  ", "en", " Ada ", consent())
    assert isinstance(record, VoiceRecord)
    assert (record.name, record.language, record.transcript, record.version) == ("Ada", "en", "hello there", 1)
    assert record.clip_seconds == pytest.approx(4.0, abs=1e-3)
    assert record.consent.subject == "Ada Lovelace" and record.consent.obtained_by == "studio-admin"
    assert record.consent.recorded_at == record.created_at and record.created_at.endswith("Z")
    assert registry.get(record.id) == record
    assert registry.list() == [record]
    # Stored: float32 mono at the upload's rate, equal to what the engine would read from the upload.
    path = registry.clip_path(record.id)
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "FLOAT")
    upload = io.BytesIO(stereo)
    expected = to_mono(soundfile.read(upload, dtype="float32", always_2d=True)[0].T.copy())
    np.testing.assert_array_equal(read_audio(path)[0][0], expected)
    assert registry.clip_bytes(record.id) == path.read_bytes()


def test_voices_survive_a_restart(tmp_path):
    with VoiceRegistry(tmp_path) as first:
        made = [first.create(wav_bytes(seed=i), "a.flac", None, "zh", f"v{i}", consent()) for i in range(2)]
    with VoiceRegistry(tmp_path) as second:
        assert second.list() == made
        assert second.get(made[1].id).transcript is None
        assert second.clip_path(made[0].id).is_file()


def test_delete_erases_everything(tmp_path):
    root = tmp_path / "data"
    registry = VoiceRegistry(root)
    tag = uuid.uuid4().hex[:10]
    keep = registry.create(wav_bytes(seed=1), "k.wav", "kept words", "en", "keeper", consent("keeper"))
    gone = registry.create(wav_bytes(seed=2), "g.wav", f"secret words {tag}", "en", f"name {tag}", consent(tag))
    heard = []
    registry.on_delete(heard.append)
    registry.delete(gone.id)
    assert heard == [gone.id]
    with pytest.raises(UnknownVoiceError):
        registry.get(gone.id)
    with pytest.raises(UnknownVoiceError):
        registry.delete(gone.id)
    assert [v.id for v in registry.list()] == [keep.id]
    files = all_bytes(root)
    log = files.pop("deletions.log").decode()
    timestamp, action, voice_id = log.strip().split("\t")
    assert (action, voice_id) == ("deleted", gone.id) and timestamp.endswith("Z") and log.count("\n") == 1
    secrets = [gone.id, tag, gone.consent.statement]
    for name, content in files.items():
        assert gone.id not in name
        for secret in secrets:
            assert secret.encode() not in content, f"{secret!r} is still in {name}"
    assert keep.id.encode() in files["voices.sqlite3"]  # the search would have found it
    db = sqlite3.connect(root / "voices.sqlite3")
    assert db.execute("SELECT count(*) FROM voices WHERE id = ?", (gone.id,)).fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM consents WHERE voice_id = ?", (gone.id,)).fetchone() == (0,)
    db.close()
    registry.close()


def test_update_bumps_version_and_replaces_clip(registry):
    record = registry.create(wav_bytes(seed=1), "a.wav", "old", "en", "ada", consent())
    old_path = registry.clip_path(record.id)
    heard = []
    registry.on_delete(heard.append)
    renamed = registry.update(record.id, transcript="new", name="Ada 2")
    assert (renamed.version, renamed.transcript, renamed.name) == (2, "new", "Ada 2")
    assert heard == [] and registry.clip_path(record.id) == old_path  # text-only change keeps the clip
    replaced = registry.update(record.id, audio=wav_bytes(seconds=5.0, seed=3), filename="b.wav")
    assert replaced.version == 3 and replaced.clip_seconds == pytest.approx(5.0)
    assert heard == [record.id]  # derived prompts and results must be dropped
    assert not old_path.exists() and registry.clip_path(record.id).is_file()
    assert sorted(p.name for p in old_path.parent.iterdir()) == ["clip-v3.wav"]
    assert replaced.consent == record.consent and replaced.created_at == record.created_at
    with pytest.raises(AudioError):
        registry.update(record.id, audio=b"not audio")
    assert registry.get(record.id).version == 3
    with pytest.raises(UnknownVoiceError):
        registry.update(uuid.uuid4().hex, transcript="x")


def _clip(seconds=4.0, rate=16000, channels=1, subtype="PCM_16", fill=None, scale=1.0) -> bytes:
    frames = int(seconds * rate)
    data = np.zeros((frames, channels), np.float32)
    data[:, 0] = scale * 0.3 * np.sin(2 * np.pi * 220 * np.arange(frames) / rate)
    if fill is not None:
        data[frames // 3, 0] = fill
    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        pytest.param(b"this is a text file, not audio" * 20, "not a readable audio file", id="not-audio"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(_clip(scale=0.0), "silent", id="silent"),
        pytest.param(_clip(scale=1e-4), "silent", id="near-silent"),
        pytest.param(_clip(seconds=2.0), "at least 3 s", id="too-short"),
        pytest.param(_clip(seconds=61.0, rate=8000), "at most 60 s", id="too-long"),
        pytest.param(_clip(seconds=3.2, rate=384000), "at most 192000 Hz", id="384kHz"),
        pytest.param(_clip(channels=9, seconds=3.5, rate=8000), "9 channels", id="9-channels"),
        pytest.param(_clip(subtype="FLOAT", fill=np.nan), "NaN or infinite", id="nan"),
        pytest.param(_clip(subtype="FLOAT", fill=np.inf), "NaN or infinite", id="inf"),
        pytest.param(_clip()[:44], "no audio samples|at least 3 s", id="header-only"),
    ],
)
def test_bad_audio_is_refused_and_nothing_is_stored(tmp_path, audio, message):
    with VoiceRegistry(tmp_path) as registry:
        with pytest.raises(AudioError, match=message) as caught:
            registry.create(audio, "upload.wav", "hi", "en", "ada", consent())
        assert isinstance(caught.value, InputError)
        assert registry.list() == []
    assert not any((tmp_path / "clips").iterdir())


def test_accepted_edges(registry):
    assert registry.create(_clip(seconds=3.1, rate=192000), "hi-res.wav", None, "ja", "a", consent()).version == 1
    eight = registry.create(_clip(channels=8, seconds=3.5, rate=8000), "8ch.wav", None, "auto", "b", consent())
    assert eight.clip_seconds == pytest.approx(3.5)
    float_peaks = registry.create(_clip(subtype="FLOAT", scale=5.0), "loud.wav", None, "zh", "c", consent())
    assert float(np.max(np.abs(read_audio(registry.clip_path(float_peaks.id))[0]))) > 1.0  # not clipped


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"consent": None}, "consent record", id="missing-consent"),
        pytest.param({"consent": Consent(subject=" ", statement="I agree")}, "subject", id="no-subject"),
        pytest.param({"consent": Consent(subject="Ada", statement="")}, "statement", id="no-statement"),
        pytest.param({"language": "fr"}, "unsupported language 'fr'", id="bad-language"),
        pytest.param({"name": "  "}, "needs a name", id="empty-name"),
        pytest.param({"name": "x" * 101}, "at most 100", id="long-name"),
        pytest.param({"name": "two\nlines"}, "one line", id="name-newline"),
        pytest.param({"transcript": "word " * 300}, "at most 1000", id="long-transcript"),
    ],
)
def test_bad_metadata_is_refused(tmp_path, kwargs, message):
    arguments = {"audio": _clip(), "filename": "a.wav", "transcript": "hi", "language": "en", "name": "ada",
                 "consent": consent(), **kwargs}  # fmt: skip
    with VoiceRegistry(tmp_path) as registry:
        with pytest.raises(InputError, match=message):
            registry.create(**arguments)
        assert registry.list() == []
    assert not any((tmp_path / "clips").iterdir())


def test_unknown_and_malformed_ids(registry):
    for voice_id in (uuid.uuid4().hex, "../../etc/passwd", "", "ABC"):
        with pytest.raises(UnknownVoiceError):
            registry.get(voice_id)
        with pytest.raises(UnknownVoiceError):
            registry.clip_path(voice_id)
        with pytest.raises(UnknownVoiceError):
            registry.delete(voice_id)


def test_disk_full_during_write_leaves_nothing(tmp_path, monkeypatch):
    registry = VoiceRegistry(tmp_path)
    good = registry.create(_clip(), "a.wav", None, "en", "kept", consent())

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(registry_module.os, "replace", disk_full)
    with pytest.raises(VoiceStorageError, match="No space left"):
        registry.create(_clip(), "b.wav", "lost words", "en", "lost", consent("lost"))
    monkeypatch.undo()
    assert registry.list() == [good]
    assert [p.name for p in (tmp_path / "clips").iterdir()] == [good.id]
    assert sorted(p.name for p in (tmp_path / "clips" / good.id).iterdir()) == ["clip-v1.wav"]
    registry.close()


def test_database_failure_leaves_no_files(tmp_path, monkeypatch):
    registry = VoiceRegistry(tmp_path)

    def broken_insert(self, voice, consent_row):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(VoiceStore, "insert", broken_insert)
    with pytest.raises(VoiceStorageError, match="disk I/O error"):
        registry.create(_clip(), "b.wav", None, "en", "lost", consent())
    monkeypatch.undo()
    assert registry.list() == [] and not any((tmp_path / "clips").iterdir())
    registry.close()


def test_interrupted_writes_are_swept_at_start(tmp_path):
    with VoiceRegistry(tmp_path) as registry:
        record = registry.create(_clip(), "a.wav", None, "en", "ada", consent())
    orphan = tmp_path / "clips" / uuid.uuid4().hex
    orphan.mkdir()
    (orphan / "clip-v1.wav").write_bytes(_clip())  # renamed, but the row was never committed
    (tmp_path / "clips" / record.id / "clip-v2.wav.1234abcd.tmp").write_bytes(b"partial")
    with VoiceRegistry(tmp_path) as registry:
        assert registry.list() == [record]
    assert [p.name for p in (tmp_path / "clips").iterdir()] == [record.id]
    assert [p.name for p in (tmp_path / "clips" / record.id).iterdir()] == ["clip-v1.wav"]


def test_callback_failure_is_reported_after_erasure(registry):
    record = registry.create(_clip(), "a.wav", None, "en", "ada", consent())
    heard = []

    def failing(voice_id):
        raise ConnectionError("cache down")

    registry.on_delete(failing)
    registry.on_delete(heard.append)
    with pytest.raises(MynaError, match="cache down"):
        registry.delete(record.id)
    assert heard == [record.id] and registry.list() == []


def test_encrypted_clips(tmp_path):
    upload = _clip(seconds=3.5)
    tag = uuid.uuid4().hex[:10]
    with VoiceRegistry(tmp_path, key=KEY) as registry:
        record = registry.create(upload, "a.wav", f"words {tag}", "en", f"ada {tag}", consent(tag))
        assert (record.name, record.transcript, record.consent.subject) == (f"ada {tag}", f"words {tag}", f"Ada Lovelace {tag}")
        assert registry.list() == [record]
        assert registry.update(record.id, transcript=f"new {tag}").transcript == f"new {tag}"
        record = registry.get(record.id)
        stored = tmp_path / "clips" / record.id / "clip-v1.wav.enc"
        sealed = stored.read_bytes()
        assert not sealed.startswith(b"RIFF") and b"WAVE" not in sealed
        path = registry.clip_path(record.id)
        assert tmp_path not in path.parents and oct(path.stat().st_mode & 0o777) == "0o600"
        samples, rate = read_audio(path)
        expected, _ = soundfile.read(io.BytesIO(upload), dtype="float32")
        assert rate == 16000 and np.array_equal(samples[0], expected)
    assert not path.exists()  # close() removes decrypted copies
    for name, content in all_bytes(tmp_path).items():
        assert tag.encode() not in content, f"personal text in plain form in {name}"
    with VoiceRegistry(tmp_path, key=KEY) as registry:
        assert registry.get(record.id) == record  # and it reads back after a restart
    with pytest.raises(VoiceKeyError, match="give the encryption key"):
        VoiceRegistry(tmp_path)
    with pytest.raises(VoiceKeyError, match="not the one"):
        VoiceRegistry(tmp_path, key=bytes(32))
    with pytest.raises(VoiceKeyError, match="32 random bytes"):
        VoiceRegistry(tmp_path, key=b"short")
    with VoiceRegistry(tmp_path, key=KEY) as registry:
        path = registry.clip_path(record.id)
        registry.delete(record.id)
        assert not path.exists() and not stored.exists()
    # A sealed clip moved onto another voice does not open (the voice id is bound in).
    with VoiceRegistry(tmp_path, key=KEY) as registry:
        a = registry.create(_clip(), "a.wav", None, "en", "a", consent())
        b = registry.create(_clip(seconds=4.0), "b.wav", None, "en", "b", consent())
        (tmp_path / "clips" / b.id / "clip-v1.wav.enc").write_bytes(
            (tmp_path / "clips" / a.id / "clip-v1.wav.enc").read_bytes()
        )
        with pytest.raises(VoiceKeyError, match="does not decrypt"):
            registry.clip_bytes(b.id)


def test_key_files_and_plain_folders(tmp_path):
    (tmp_path / "key.hex").write_text(KEY.hex() + "\n")
    assert read_key(tmp_path / "key.hex") == KEY
    (tmp_path / "key.bad").write_text("not a key")
    with pytest.raises(VoiceKeyError, match="64 hex digits"):
        read_key(tmp_path / "key.bad")
    assert len(generate_key()) == 32 and generate_key() != generate_key()
    with VoiceRegistry(tmp_path / "plain") as registry:
        registry.create(_clip(), "a.wav", None, "en", "ada", consent())
    with pytest.raises(VoiceKeyError, match="created without encryption"):
        VoiceRegistry(tmp_path / "plain", key=KEY)


def test_concurrent_creates_and_deletes(tmp_path):
    registry = VoiceRegistry(tmp_path)
    clip = _clip()
    created, deleted, errors = [], [], []
    lock = threading.Lock()

    def work(worker: int) -> None:
        try:
            for i in range(4):
                record = registry.create(clip, "a.wav", f"w{worker} {i}", "en", f"w{worker}-{i}", consent())
                with lock:
                    created.append(record.id)
                if i % 2:
                    registry.delete(record.id)
                    with lock:
                        deleted.append(record.id)
                registry.list()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    remaining = {v.id for v in registry.list()}
    assert remaining == set(created) - set(deleted) and len(remaining) == 8
    assert {p.name for p in (tmp_path / "clips").iterdir()} == remaining
    # Two threads deleting the same voice: exactly one succeeds.
    target = next(iter(remaining))
    outcomes = []

    def erase() -> None:
        try:
            registry.delete(target)
            outcomes.append("ok")
        except UnknownVoiceError:
            outcomes.append("unknown")

    pair = [threading.Thread(target=erase) for _ in range(2)]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join()
    assert sorted(outcomes) == ["ok", "unknown"]
    registry.close()
    wal = tmp_path / "voices.sqlite3-wal"
    assert not wal.exists() or os.path.getsize(wal) == 0


@pytest.mark.parametrize(("container", "subtype"), [("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_compressed_uploads_are_accepted(registry, container, subtype):
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(4 * 44100) / 44100)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, tone, 44100, format=container, subtype=subtype)
    record = registry.create(buffer.getvalue(), f"clip.{container.lower()}", None, "en", container, consent())
    assert record.clip_seconds == pytest.approx(4.0, abs=0.05)
    assert soundfile.info(str(registry.clip_path(record.id))).format == "WAV"


# -- names: normal form, visible characters, unique ignoring case ------------------------------------


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
def test_names_are_normalized_and_unique_ignoring_case(tmp_path, key):
    with VoiceRegistry(tmp_path, key=key) as registry:
        anna = registry.create(_clip(), "a.wav", None, "en", "  ＡＮＮＡ  ", consent())
        assert anna.name == "ANNA"  # NFKC: full-width letters are plain ones
        for taken in ("anna", "Anna", "ａｎｎａ"):
            with pytest.raises(VoiceNameTaken, match="exists already"):
                registry.create(_clip(), "b.wav", None, "en", taken, consent())
        other = registry.create(_clip(), "c.wav", None, "en", "Bob", consent())
        with pytest.raises(VoiceNameTaken):
            registry.update(other.id, name="aNNa")
        assert registry.find("anna") == anna and registry.find(other.id) == other and registry.find("BOB") == other
        assert registry.update(anna.id, name="anna").name == "anna"  # its own name, in another case
        assert len(registry.list()) == 2 and not any((tmp_path / "clips").glob("*/*.tmp"))
        with pytest.raises(UnknownVoiceError):
            registry.find("carol")


@pytest.mark.parametrize("name", ["\u202eevil", "zero\u200bwidth", "bell\x07", "two\u2028lines", "soft\u00adhyphen"])
def test_names_with_control_or_format_characters_are_refused(registry, name):
    with pytest.raises(InputError, match="control or format characters"):
        registry.create(_clip(), "a.wav", None, "en", name, consent())
    assert registry.list() == []


def test_a_database_from_before_unique_names_keeps_its_duplicates_reachable(tmp_path):
    with VoiceRegistry(tmp_path) as registry:
        first = registry.create(_clip(), "a.wav", None, "en", "one", consent())
        second = registry.create(_clip(), "b.wav", None, "en", "two", consent())
    db = sqlite3.connect(tmp_path / "voices.sqlite3")  # make it a version-1 database with a duplicate name
    db.executescript("DROP INDEX voices_name_key; ALTER TABLE voices DROP COLUMN name_key; "
                     "ALTER TABLE voices DROP COLUMN created_by; UPDATE voices SET name = 'Same'; "
                     "PRAGMA user_version = 1;")  # fmt: skip
    db.close()
    with VoiceRegistry(tmp_path) as registry:
        assert {v.id for v in registry.list()} == {first.id, second.id}
        assert registry.find("same").id in {first.id, second.id} and registry.get(second.id).name == "Same"
        with pytest.raises(VoiceNameTaken):
            registry.create(_clip(), "c.wav", None, "en", "SAME", consent())


# -- privacy: folders 0700, files 0600 ----------------------------------------------------------------


def test_the_voice_folder_is_private(tmp_path):
    root = tmp_path / "voices"
    root.mkdir(mode=0o755)
    (root / "deletions.log").write_text("")  # from an older version, world-readable
    os.chmod(root / "deletions.log", 0o644)
    with VoiceRegistry(root) as registry:
        record = registry.create(_clip(), "a.wav", "words", "en", "private", consent(), created_by="studio-key")
        gone = registry.create(_clip(), "b.wav", None, "en", "gone", consent())
        registry.delete(gone.id)
        assert registry.get(record.id).created_by == "studio-key"
        names = {p.name for p in root.rglob("*")}
        assert {"voices.sqlite3", "voices.sqlite3-wal", "voices.sqlite3-shm", "deletions.log"} <= names
        for path in (root, *root.rglob("*")):
            mode = path.stat().st_mode & 0o777
            assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
