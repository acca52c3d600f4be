"""`myna say` end to end through a real subprocess, on the tiny seeded model set."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile


@pytest.fixture(scope="module")
def model_dir(tiny_set, tmp_path_factory):
    """A directory laid out like upstream's pretrained_models, linking to the tiny v2 model set."""
    root = tmp_path_factory.mktemp("pretrained_models")
    (root / "gsv-v2final-pretrained").mkdir()
    (root / "gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt").symlink_to(tiny_set["gpt"])
    (root / "gsv-v2final-pretrained/s2G2333k.pth").symlink_to(tiny_set["sovits"])
    (root / "chinese-hubert-base").symlink_to(tiny_set["hubert"])
    (root / "chinese-roberta-wwm-ext-large").symlink_to(tiny_set["bert"])
    (root / "ref.wav").symlink_to(tiny_set["clips"][0])
    return root


def say(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "myna", "say", *args], input=stdin, capture_output=True, timeout=600)


def test_say_writes_a_wav_and_reports(model_dir, tmp_path):
    out = tmp_path / "out.wav"
    proc = say("你好，世界。", "--ref", str(model_dir / "ref.wav"), "--ref-text", "这是一段参考音频。",
               "--model-dir", str(model_dir), "-o", str(out), "--top-k", "1", "--seed", "0", "--split", "cut0")
    assert proc.returncode == 0, proc.stderr.decode()
    audio, rate = soundfile.read(out, dtype="int16")
    assert rate == 32000 and audio.ndim == 1 and len(audio) > rate * 0.3
    assert np.abs(audio).max() > 0
    assert b"real-time factor" in proc.stderr


def test_text_from_stdin_and_explicit_files_give_the_same_audio(model_dir, tmp_path):
    common = ["--ref", str(model_dir / "ref.wav"), "--lang", "en", "--top-k", "1", "--seed", "0",
              "--noise-scale", "0"]
    a = say("Hello there.", "--model-dir", str(model_dir), "-o", str(tmp_path / "a.wav"), *common)
    files = ["--gpt", str(next(model_dir.glob("gsv-v2final-pretrained/*.ckpt"))),
             "--sovits", str(model_dir / "gsv-v2final-pretrained/s2G2333k.pth"),
             "--hubert", str(model_dir / "chinese-hubert-base")]
    b = say("-", *files, "-o", str(tmp_path / "b.wav"), *common, stdin=b"Hello there.")
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    assert np.array_equal(soundfile.read(tmp_path / "a.wav")[0], soundfile.read(tmp_path / "b.wav")[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ref", "missing.wav"], b"missing.wav: no such audio file"),
        (["--ref", "REF", "--lang", "fr"], b"unsupported language"),
        (["--ref", "REF", "--speed", "0"], b"speed"),
        (["--ref", "REF", "--gpt", "x.ckpt"], b"no model given"),
    ],
)
def test_bad_input_fails_with_a_message(model_dir, tmp_path, args, message):
    args = [str(model_dir / "ref.wav") if a == "REF" else a for a in args]
    model = [] if "--gpt" in args else ["--model-dir", str(model_dir)]
    proc = say("Hello.", *args, *model, "-o", str(tmp_path / "o.wav"))
    assert proc.returncode == 1
    assert message in proc.stderr and b"Traceback" not in proc.stderr
    assert not (tmp_path / "o.wav").exists()


def test_chinese_without_bert_is_explained(model_dir, tmp_path):
    proc = say("你好。", "--ref", str(model_dir / "ref.wav"), "-o", str(tmp_path / "o.wav"),
               "--gpt", str(next(model_dir.glob("gsv-v2final-pretrained/*.ckpt"))),
               "--sovits", str(model_dir / "gsv-v2final-pretrained/s2G2333k.pth"),
               "--hubert", str(model_dir / "chinese-hubert-base"))
    assert proc.returncode == 1 and b"BERT" in proc.stderr


@pytest.fixture(scope="module")
def default_voice_dir(tiny_set, tmp_path_factory):
    """A default-voice folder (relative manifest) made of the tiny model set."""
    root = tmp_path_factory.mktemp("default_voice")
    for name, key in (("s1.ckpt", "gpt"), ("s2.pth", "sovits"), ("hubert", "hubert")):
        (root / name).symlink_to(tiny_set[key])
    (root / "ref.wav").symlink_to(tiny_set["clips"][0])
    manifest = {"gpt": "s1.ckpt", "sovits": "s2.pth", "hubert": "hubert", "ref": "ref.wav",
                "ref_text": "This is the reference clip.", "ref_lang": "en", "lang": "en",
                "notice": "a tiny random test voice."}
    (root / "voice.json").write_text(json.dumps(manifest))
    return root


def say_env(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "myna", "say", *args], capture_output=True, timeout=600,
                          env={**os.environ, **env})


def test_no_model_given_speaks_with_the_default_voice(default_voice_dir, tiny_set, tmp_path):
    env = {"MYNA_DEFAULT_VOICE": str(default_voice_dir)}
    plain = say_env(env, "Hello there.", "-o", str(tmp_path / "a.wav"), "--seed", "0")
    assert plain.returncode == 0, plain.stderr.decode()
    own, rate = soundfile.read(tmp_path / "a.wav")
    assert rate == 32000 and np.abs(own).max() > 0
    assert b"note: a tiny random test voice." in plain.stderr  # the manifest's notice is shown
    # the manifest says English: without --lang the text is read as English, as with --lang en
    explicit = say_env(env, "Hello there.", "--lang", "en", "-o", str(tmp_path / "b.wav"), "--seed", "0")
    assert explicit.returncode == 0
    assert np.array_equal(own, soundfile.read(tmp_path / "b.wav")[0])
    # zero-shot: the default models with another clip give another voice
    cloned = say_env(env, "Hello there.", "--ref", str(tiny_set["clips"][1]), "--ref-text", "Another clip.",
                     "-o", str(tmp_path / "c.wav"), "--seed", "0")
    assert cloned.returncode == 0, cloned.stderr.decode()
    other = soundfile.read(tmp_path / "c.wav")[0]
    assert len(other) != len(own) or not np.allclose(other, own)
    # models named explicitly: the default voice and its notice stay out of it
    named = say_env(env, "Hello there.", "--gpt", str(tiny_set["gpt"]), "--sovits", str(tiny_set["sovits"]),
                    "--hubert", str(tiny_set["hubert"]), "--ref", str(tiny_set["clips"][0]), "--lang", "en",
                    "-o", str(tmp_path / "d.wav"), "--seed", "0")
    assert named.returncode == 0, named.stderr.decode()
    assert b"note: a tiny random test voice." not in named.stderr


def test_a_missing_default_voice_is_explained(tmp_path):
    proc = say_env({"MYNA_DEFAULT_VOICE": str(tmp_path / "nowhere")}, "Hello.", "-o", str(tmp_path / "o.wav"))
    assert proc.returncode == 1 and b"not a voice folder" in proc.stderr and b"--ref" in proc.stderr
    assert b"Traceback" not in proc.stderr and not (tmp_path / "o.wav").exists()


def detect(*files) -> tuple[int, list[dict]]:
    proc = subprocess.run([sys.executable, "-m", "myna", "watermark", "detect", *map(str, files)],
                          capture_output=True, timeout=600)
    return proc.returncode, [json.loads(line) for line in proc.stdout.decode().splitlines()]


@pytest.mark.parametrize("setting", [None, "0"])
def test_say_output_is_watermarked_unless_the_operator_turns_it_off(model_dir, tmp_path, setting):
    out = tmp_path / "out.wav"
    env = {k: v for k, v in os.environ.items() if k != "MYNA_WATERMARK"}
    if setting is not None:
        env["MYNA_WATERMARK"] = setting
    proc = subprocess.run([sys.executable, "-m", "myna", "say", "Hello there, my good friend. How are you today? "
                           "I am fine, thank you very much.", "--lang", "en", "--ref", str(model_dir / "ref.wav"),
                           "--model-dir", str(model_dir), "-o", str(out), "--seed", "1", "--max-tokens", "120"],
                          capture_output=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    code, records = detect(out)
    assert code == 0 and len(records) == 1 and records[0]["file"] == str(out)
    assert records[0]["watermarked"] is (setting is None)
    assert (b"no watermark" in proc.stderr) is (setting is not None)
    if setting is None:
        assert records[0]["payload"] == 0 and records[0]["confidence"] > 0.999
