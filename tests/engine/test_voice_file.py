"""voice.json: one schema for trained voices and default-voice folders, old files still readable."""

import json

import pytest

from myna.engine.voice_file import (
    VoiceFile,
    read_trained_voice,
    read_voice_file,
    trained_voice_dir,
    write_voice_file,
)
from myna.errors import InputError


def _files(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(name.encode())
    return [folder / name for name in names]


def test_paths_inside_the_folder_are_relative_and_the_folder_can_move(tmp_path):
    home = tmp_path / "trained" / "anna"
    gpt, sovits, clip = _files(home, "anna_s1.ckpt", "anna_s2.pth", "clip.wav")
    (hubert,) = _files(tmp_path / "base", "hubert.bin")
    voice = VoiceFile(gpt=gpt, sovits=sovits, hubert=hubert, ref=clip, ref_text="A clip.", ref_lang="en",
                      name="anna", version="v2")
    record = json.loads(write_voice_file(home, voice).read_text())
    assert (record["gpt"], record["ref"], record["hubert"]) == ("anna_s1.ckpt", "clip.wav", str(hubert))
    assert record["bert"] is None and record["notice"] is None and record["encoders"] is None
    assert read_voice_file(home) == voice
    moved = tmp_path / "moved"
    home.rename(moved)
    again = read_voice_file(moved)
    assert again.gpt == (moved / "anna_s1.ckpt").resolve() and again.hubert == hubert and again.ref_text == "A clip."


def test_an_old_voice_file_with_absolute_paths_still_loads(tmp_path):
    home = trained_voice_dir(tmp_path, "old")
    gpt, sovits, clip = _files(home, "old_s1.ckpt", "old_s2.pth", "ref.wav")
    old = {"name": "old", "version": "v2Pro", "gpt": str(gpt), "sovits": str(sovits), "hubert": None, "bert": None,
           "sv": None, "content": "whisper-tiny.en", "speaker": "resemblyzer", "preset": "small",
           "ref": str(clip), "ref_text": "Hello.", "ref_lang": "en"}
    (home / "voice.json").write_text(json.dumps(old))
    voice = read_trained_voice(tmp_path, "old")
    assert (voice.gpt, voice.sovits, voice.ref, voice.version) == (gpt, sovits, clip, "v2Pro")
    assert voice.encoders == {"content": "whisper-tiny.en", "speaker": "resemblyzer", "preset": "small"}
    assert voice.lang is None and voice.hubert is None


@pytest.mark.parametrize(("record", "message"), [
    ([1, 2], "expected a JSON object"),
    ({"gpt": "s1.ckpt"}, "no 'sovits' entry"),
    ({"gpt": 3, "sovits": "s2.pth"}, "'gpt' must be a path"),
    ({"gpt": "s1.ckpt", "sovits": "s2.pth", "ref_text": ["a"]}, "'ref_text' must be a string"),
    ({"gpt": "s1.ckpt", "sovits": "s2.pth", "encoders": "whisper"}, "'encoders' must map"),
    ({"gpt": "s1.ckpt", "sovits": "s2.pth"}, "gpt file .* is missing"),
])
def test_bad_voice_files_are_explained(tmp_path, record, message):
    (tmp_path / "voice.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match=message):
        read_voice_file(tmp_path)


def test_unknown_trained_voices_and_bad_names_are_explained(tmp_path):
    with pytest.raises(InputError, match="no trained voice 'nobody'.*myna train --name nobody"):
        read_trained_voice(tmp_path, "nobody")
    with pytest.raises(InputError, match="plain file name"):
        trained_voice_dir(tmp_path, "../escape")
