"""The default-voice folder: reading its manifest and bundling a trained voice into one."""

import json

import pytest

from myna.engine.default_voice import find_default_voice, write_bundle
from myna.errors import InputError


def _trained_voice(tmp_path):
    home = tmp_path / "trained" / "default"
    home.mkdir(parents=True)
    for name in ("default_s1.ckpt", "default_s2.pth", "clip.wav"):
        (home / name).write_bytes(name.encode())
    record = {"name": "default", "gpt": str(home / "default_s1.ckpt"), "sovits": str(home / "default_s2.pth"),
              "hubert": None, "bert": None, "sv": None, "ref": str(home / "clip.wav"),
              "ref_text": "A clip.", "ref_lang": "en"}
    (home / "voice.json").write_text(json.dumps(record))
    return home / "voice.json"


def test_bundled_files_keep_their_format(tmp_path):
    voice_json = _trained_voice(tmp_path)
    home = voice_json.parent
    for name in ("default_s1.safetensors", "default_s2.safetensors"):
        (home / name).write_bytes(name.encode())
    record = json.loads(voice_json.read_text())
    record.update(gpt=str(home / "default_s1.safetensors"), sovits=str(home / "default_s2.safetensors"))
    voice_json.write_text(json.dumps(record))
    voice = find_default_voice(write_bundle(voice_json, tmp_path / "bundle").parent)
    assert voice.paths.gpt.name == "s1.safetensors" and voice.paths.sovits.read_bytes() == b"default_s2.safetensors"


def test_a_bundle_is_self_contained_and_readable(tmp_path):
    manifest = write_bundle(_trained_voice(tmp_path), tmp_path / "bundle")
    record = json.loads(manifest.read_text())
    assert record["gpt"] == "s1.ckpt" and record["ref"] == "ref.wav" and record["lang"] == "en"
    moved = tmp_path / "elsewhere"
    (tmp_path / "bundle").rename(moved)  # relative paths: the folder can move
    voice = find_default_voice(moved)
    assert voice.paths.gpt == (moved / "s1.ckpt").resolve() and voice.paths.gpt.read_bytes() == b"default_s1.ckpt"
    assert voice.paths.hubert is None and voice.ref_text == "A clip." and voice.lang == "en"
    assert voice.notice is None and record["notice"] is None


def test_a_bundle_carries_its_notice(tmp_path):
    manifest = write_bundle(_trained_voice(tmp_path), tmp_path / "bundle", notice="Early model: words may be wrong.")
    assert find_default_voice(manifest.parent).notice == "Early model: words may be wrong."


def test_a_voice_needing_external_models_is_not_bundled(tmp_path):
    path = _trained_voice(tmp_path)
    record = json.loads(path.read_text())
    record["hubert"] = "/models/chinese-hubert-base"
    path.write_text(json.dumps(record))
    with pytest.raises(InputError, match="self-contained"):
        write_bundle(path, tmp_path / "bundle")


@pytest.mark.parametrize(("content", "message"), [
    (None, "not a voice folder"),
    ("{not json", "not a readable voice manifest"),
    ('{"gpt": "s1.ckpt", "sovits": "s2.pth", "ref": "ref.wav"}', "gpt file"),
    ('{"sovits": "s2.pth", "ref": "ref.wav"}', "no 'gpt' entry"),
])
def test_broken_folders_are_explained(tmp_path, content, message):
    if content is not None:
        (tmp_path / "voice.json").write_text(content)
    with pytest.raises(InputError, match=message):
        find_default_voice(tmp_path)


def test_a_voice_description_is_bundled_without_a_voice_json(tmp_path):
    from myna.engine.voice_file import VoiceFile, read_voice_file

    home = tmp_path / "work"
    home.mkdir()
    for name in ("s1.safetensors", "s2.safetensors", "clip.wav"):
        (home / name).write_bytes(name.encode())
    voice = VoiceFile(gpt=home / "s1.safetensors", sovits=home / "s2.safetensors", ref=home / "clip.wav",
                      ref_text="A clip.", ref_lang="en", encoders={"content": "whisper-tiny.en"})
    bundled = read_voice_file(write_bundle(voice, tmp_path / "bundle", notice="Early.").parent)
    assert bundled.gpt == (tmp_path / "bundle" / "s1.safetensors").resolve() and bundled.ref.read_bytes() == b"clip.wav"
    assert bundled.encoders == {"content": "whisper-tiny.en"} and bundled.notice == "Early." and bundled.lang == "en"
