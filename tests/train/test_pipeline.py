"""`myna train` end to end on the tiny models: run identity, pruning, self-contained voices, epochs, status."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from myna import checkpoints
from myna.cli import main
from myna.engine.voice_file import read_trained_voice
from myna.train.config import GPTTrainConfig, SoVITSTrainConfig
from myna.train.pipeline import TrainRequest, train_voice
from myna.train.runs import RunMismatch


def _base(tiny_set, root):
    base = root / "base"
    (base / "gsv-v2final-pretrained").mkdir(parents=True)
    (base / "gsv-v2final-pretrained" / "s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt").symlink_to(tiny_set["gpt"])
    (base / "gsv-v2final-pretrained" / "s2G2333k.pth").symlink_to(tiny_set["sovits"])
    (base / "chinese-hubert-base").symlink_to(tiny_set["hubert"])
    (base / "chinese-roberta-wwm-ext-large").symlink_to(tiny_set["bert"])
    return base


def _dataset(tiny_set, folder, words: str):
    folder.mkdir()
    lines = []
    for i, clip in enumerate(tiny_set["clips"]):
        shutil.copy(clip, folder / clip.name)
        lines.append(f"{clip.name}|spk|EN|{words} number {i}.\n")
    (folder / "data.list").write_text("".join(lines))
    return folder / "data.list"


def _request(listing, base, data_dir, **options):
    settings = {"epochs": 1, "batch_size": 2, "save_every_epochs": 1}
    return TrainRequest(listing, base, "tiny", data_dir, sovits=SoVITSTrainConfig(**settings, discriminator_narrow=16),
                        gpt=GPTTrainConfig(**settings), **options)


def test_train_voice_knows_its_run_prunes_states_and_keeps_its_own_clips(tiny_set, tmp_path, capsys):
    base, data = _base(tiny_set, tmp_path), tmp_path / "data"
    first = _dataset(tiny_set, tmp_path / "first", "This is my reference voice")
    voice_file = train_voice(_request(first, base, data, epoch_weights=True))
    home = voice_file.parent
    voice = read_trained_voice(data, "tiny")
    record = json.loads(voice_file.read_text())
    assert record["gpt"] == "tiny_s1.ckpt" and record["hubert"] == str(base / "chinese-hubert-base")
    # the reference clip and alternatives live in the voice folder (defect 3)
    assert voice.ref.parent == home / "refs" and record["ref"].startswith("refs/")
    assert voice.ref.read_bytes() in [c.read_bytes() for c in tiny_set["clips"]]
    assert json.loads((home / "refs" / "refs.json").read_text())["chosen"] == voice.ref.name
    # one export format, training states pruned once finished (defect 5); this run's settings exported (defect 9)
    assert sorted(p.name for p in home.iterdir() if p.is_file()) == ["tiny_s1.ckpt", "tiny_s2.pth", "voice.json"]
    assert not (home / "work" / "sovits" / "checkpoints").exists() and not (home / "work" / "gpt" / "checkpoints").exists()
    assert checkpoints.read_sovits(voice.sovits).config["train"]["epochs"] == 1
    # loss history of both stages, the status a job runner follows, the curve
    stages = {json.loads(line)["stage"] for line in (home / "work" / "losses.jsonl").read_text().splitlines()}
    status = json.loads((home / "work" / "status.json").read_text())
    assert stages == {"SoVITS", "GPT"} and status["state"] == "done" and status["voice"] == str(voice_file)
    assert (home / "work" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    # weights per saved epoch under upstream's names, chosen with `voices use`
    epochs = sorted(p.name for p in (home / "epochs").iterdir())
    assert len(epochs) == 2 and epochs[0] == "tiny-e1.ckpt" and epochs[1].startswith("tiny_e1_s")
    args = ["--data-dir", str(data)]
    assert main(["voices", "use", "tiny", *args]) == 0
    assert "epoch   1" in capsys.readouterr().out
    assert main(["voices", "use", "tiny", "--epoch", "1", *args]) == 0
    assert json.loads(voice_file.read_text())["gpt"] == "epochs/tiny-e1.ckpt"
    assert main(["voices", "use", "tiny", "--epoch", "3", *args]) == 1
    assert "no SoVITS weights for epoch 3" in capsys.readouterr().err
    assert main(["voices", "use", "tiny", "--final", *args]) == 0
    assert main(["voices", "use", "nobody", *args]) == 1
    assert "no trained voice 'nobody'" in capsys.readouterr().err
    assert main(["train", "--status", "tiny", *args]) == 0
    shown = capsys.readouterr().out
    assert "tiny: done" in shown and "GPT: step" in shown and "tiny-e1.ckpt" in shown

    # the same command again: nothing to train, the voice stays (a resumed run of the same inputs)
    before = voice.sovits.read_bytes()
    train_voice(_request(first, base, data))
    assert voice.sovits.read_bytes() == before

    # other data under the same name: a clear stop, not a silent no-op (defect 1)
    second = _dataset(tiny_set, tmp_path / "second", "Something else entirely")
    with pytest.raises(RunMismatch, match=r"changed: the training data.*--restart.*--continue-training"):
        train_voice(_request(second, base, data))
    with pytest.raises(RunMismatch, match=r"SoVITS|sovits learning_rate"):
        request = _request(first, base, data)
        request.sovits.learning_rate = 3e-4
        train_voice(request)
    train_voice(_request(second, base, data, restart=True))
    voice = read_trained_voice(data, "tiny")
    assert voice.ref_text.startswith("Something else entirely") and not (home / "epochs").exists()
    # or go on from the voice as it is, on other data
    train_voice(_request(first, base, data, continue_training=True))
    run = json.loads((home / "work" / "run.json").read_text())
    assert run["continued_from"]["sovits"] == "work/continued-from/tiny_s2.pth" and run["finished"]
    assert read_trained_voice(data, "tiny").ref_text.startswith("This is my reference voice")

    # the voice folder is self-contained: the recordings can go, and it can be exported and imported
    shutil.rmtree(tmp_path / "second")
    shutil.rmtree(tmp_path / "first")
    archive = tmp_path / "tiny.zip"
    happy = tiny_set["clips"][0]
    assert main(["voices", "references", "add", "--voice", "tiny", str(happy), "--emotion", "happy",
                 "--text", "What a lovely day!", "--lang", "en", *args]) == 0
    assert main(["voices", "export", "tiny", "-o", str(archive), *args]) == 0
    other = tmp_path / "elsewhere"
    assert main(["voices", "import", str(archive), "--name", "moved", "--data-dir", str(other)]) == 0
    capsys.readouterr()
    # its emotion references travel with it
    assert main(["voices", "references", "list", "--voice", "moved", "--json", "--data-dir", str(other)]) == 0
    [moved_ref] = json.loads(capsys.readouterr().out)
    assert moved_ref["emotion"] == "happy" and moved_ref["clip"].startswith(str(other))
    assert Path(moved_ref["clip"]).is_file()
    out = tmp_path / "hello.wav"
    code = main(["say", "Hello there.", "--lang", "en", "--voice", "moved", "--data-dir", str(other),
                 "--max-tokens", "20", "--seed", "1", "-o", str(out)])
    assert code == 0 and out.stat().st_size > 44
