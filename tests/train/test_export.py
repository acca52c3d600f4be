"""Export: trained weights -> upstream-format files that read back, carry the version marker and synthesize."""

import torch

from myna import checkpoints
from myna.engine.loading import ModelPaths, load_synthesizer
from myna.engine.options import SynthesisOptions
from myna.models.sovits import SoVITS, SoVITSConfig
from myna.models.t2s import T2SConfig, T2SModel
from myna.train.config import GPTTrainConfig, SoVITSTrainConfig
from myna.train.export import export_gpt, export_sovits
from myna.train.gpt_trainer import GPTTrainer
from myna.train.sovits_trainer import SoVITSTrainer
from myna.weights.sealed import is_sealed


def _fine_tuned(tiny_set):
    """One training step of each stage, starting from the tiny base files."""
    base_g = checkpoints.read_sovits(tiny_set["sovits"])
    sovits = SoVITSTrainer(SoVITSConfig.from_dict(base_g.config, version=base_g.version),
                           SoVITSTrainConfig(batch_size=1, discriminator_narrow=16), generator_state=base_g.state_dict)
    gen = torch.Generator().manual_seed(3)
    sovits.train_step([{"ssl": torch.randn(768, 40, generator=gen), "wav": 0.2 * torch.randn(40 * 640, generator=gen),
                        "phones": torch.randint(1, 700, (9,), generator=gen)}], 0, 0)
    base_t = checkpoints.read_gpt(tiny_set["gpt"])
    gpt = GPTTrainer(T2SConfig.from_dict(base_t.config), GPTTrainConfig(batch_size=1, learning_rate=1e-3),
                     state=base_t.state_dict)
    gpt.train_step([{"phones": torch.randint(1, 700, (6,), generator=gen), "bert": torch.zeros(1024, 6),
                     "semantic": torch.randint(0, 1024, (12,), generator=gen)}], 0, 0)
    return base_g, base_t, sovits, gpt


def test_exported_files_read_back_in_upstream_layout_and_synthesize(tiny_set, tmp_path):
    base_g, base_t, sovits, gpt = _fine_tuned(tiny_set)
    sovits_files = export_sovits(sovits.generator, tmp_path / "s2_voice.pth", "1 step", base_g.config)
    gpt_files = export_gpt(gpt.model, tmp_path / "s1_voice.ckpt", "1 step", base_t.config)
    assert [p.suffix for p in sovits_files] == [".pth", ".safetensors"]
    assert (tmp_path / "s2_voice.pth").read_bytes()[:2] == b"01"  # upstream's v2 marker, not a plain zip

    for path in sovits_files:
        ckpt = checkpoints.read_sovits(path)
        assert ckpt.version == "v2" and ckpt.config["version"] == "v2"
        assert set(ckpt.state_dict) == set(base_g.state_dict)  # no enc_q, nothing missing
        assert ckpt.config["data"]["n_mel_channels"] == 128  # base config keys kept for the WebUI
        trained = sovits.generator.state_dict()["dec.conv_post.weight"].half()
        assert torch.equal(ckpt.state_dict["dec.conv_post.weight"], trained)
        assert not torch.equal(trained, base_g.state_dict["dec.conv_post.weight"])
    for path in gpt_files:
        ckpt = checkpoints.read_gpt(path)
        assert set(ckpt.state_dict) == set(base_t.state_dict)
        assert T2SConfig.from_dict(ckpt.config) == gpt.config
    raw = torch.load(tmp_path / "s1_voice.ckpt", weights_only=True)
    assert all(k.startswith("model.") for k in raw["weight"]) and raw["weight"]["model.bert_proj.weight"].dtype == torch.float16

    synth = load_synthesizer(ModelPaths(tmp_path / "s1_voice.ckpt", tmp_path / "s2_voice.pth", tiny_set["hubert"], tiny_set["bert"]))
    voice = synth.voice(tiny_set["clips"][0], "This is my reference voice.", "en")
    audio = synth.synthesize("Hello there.", "en", voice, SynthesisOptions(top_k=1, seed=1, max_tokens=20))
    assert audio.size > 0 and bool(torch.isfinite(torch.from_numpy(audio)).all())


def test_train_pipeline_registers_a_voice_that_say_uses(tiny_set, tmp_path):
    """A .list -> features -> both stages -> export -> voice.json -> `myna say --voice` (tiny sizes, 1 epoch)."""
    import json

    from myna.cli import main
    from myna.engine.voice_file import read_trained_voice
    from myna.train.pipeline import TrainRequest, train_voice

    base = tmp_path / "base"
    (base / "gsv-v2final-pretrained").mkdir(parents=True)
    (base / "gsv-v2final-pretrained" / "s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt").symlink_to(tiny_set["gpt"])
    (base / "gsv-v2final-pretrained" / "s2G2333k.pth").symlink_to(tiny_set["sovits"])
    (base / "chinese-hubert-base").symlink_to(tiny_set["hubert"])
    (base / "chinese-roberta-wwm-ext-large").symlink_to(tiny_set["bert"])
    listing = tmp_path / "data.list"
    listing.write_text("".join(f"{clip}|spk|EN|This is my reference voice number {i}.\n"
                               for i, clip in enumerate(tiny_set["clips"])))
    settings = {"epochs": 1, "batch_size": 2, "save_every_epochs": 1}
    request = TrainRequest(listing, base, "tiny", tmp_path / "data",
                           sovits=SoVITSTrainConfig(**settings, discriminator_narrow=16),
                           gpt=GPTTrainConfig(**settings))
    voice_file = train_voice(request)
    voice = read_trained_voice(tmp_path / "data", "tiny")
    assert voice.sovits.read_bytes()[:2] == b"01" and voice.gpt.is_file()
    assert str(voice.ref) in [str(c) for c in tiny_set["clips"]] and voice.ref_lang == "en"
    record = json.loads(voice_file.read_text())  # the voice's own files by relative paths, the base's absolute
    assert record["gpt"] == "tiny_s1.ckpt" and record["hubert"] == str(base / "chinese-hubert-base")
    work = voice_file.parent / "work"
    assert json.loads((work / "sovits" / "train_config.json").read_text())["epochs"] == 1
    assert list((work / "sovits" / "samples").glob("*.wav")) and list((work / "gpt" / "samples").glob("*.json"))

    out = tmp_path / "hello.wav"
    code = main(["say", "Hello there.", "--lang", "en", "--voice", "tiny", "--data-dir", str(tmp_path / "data"),
                 "--max-tokens", "20", "--seed", "1", "-o", str(out)])
    assert code == 0 and out.stat().st_size > 44


def test_train_command_explains_bad_input(tmp_path, capsys):
    from myna.cli import main

    args = ["train", "--data", str(tmp_path / "x.list"), "--data-dir", str(tmp_path), "--quiet"]
    assert main([*args, "--base", str(tmp_path / "nowhere"), "--name", "anna"]) == 1
    assert "nowhere: no such model directory" in capsys.readouterr().err
    assert main([*args, "--base", str(tmp_path), "--name", "../anna"]) == 1
    assert "must be a plain file name" in capsys.readouterr().err
    assert main(["say", "Hi.", "--voice", "nobody", "--data-dir", str(tmp_path), "-o", str(tmp_path / "o.wav")]) == 1
    assert "no trained voice 'nobody'" in capsys.readouterr().err


def test_exported_files_can_be_written_encrypted(tiny_set, tmp_path):
    key = bytes(range(32))
    base_g, base_t = checkpoints.read_sovits(tiny_set["sovits"]), checkpoints.read_gpt(tiny_set["gpt"])
    sovits = SoVITS(SoVITSConfig.from_dict(base_g.config, version=base_g.version))
    gpt = T2SModel(T2SConfig.from_dict(base_t.config))
    files = export_sovits(sovits, tmp_path / "v_s2.pth", "enc", base_g.config, key=key)
    files += export_gpt(gpt, tmp_path / "v_s1.ckpt", "enc", base_t.config, key=key)
    assert all(is_sealed(path) for path in files) and len(list(tmp_path.iterdir())) == 4
    assert checkpoints.read_sovits(files[0], key=key).version == base_g.version
    assert set(checkpoints.read_gpt(files[3], key=key).state_dict) == set(gpt.state_dict())
