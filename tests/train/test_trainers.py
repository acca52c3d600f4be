"""SoVITS and GPT trainers: loss goes down, resume is exact, checkpoints are written atomically."""

import importlib.util
import math
import pickle
from pathlib import Path

import pytest
import torch

from myna.models.sovits import SoVITSConfig
from myna.models.t2s import T2SConfig
from myna.train import loop
from myna.train.config import GPTTrainConfig, SoVITSTrainConfig
from myna.train.gpt_trainer import GPTTrainer, teacher_forced_scores
from myna.train.sovits_trainer import SoVITSTrainer


def _fixtures(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "models" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_sovits(**changes) -> SoVITSConfig:
    """The tiny upstream-shaped v2 config, narrowed to a 64-wide prior, posterior and flow (upstream's files need 192
    there, these trainer tests do not: a third of the parameters, a faster step)."""
    return SoVITSConfig(**{**_fixtures("sovits_fixtures").TINY_OVERRIDES, "hidden_channels": 64, "segment_size": 1280,
                           **changes})


TINY_SOVITS = tiny_sovits()
TINY_GPT = T2SConfig.from_dict({"model": _fixtures("t2s_fixtures").TINY_MODEL})


def sovits_items(count: int = 2) -> list[dict]:
    """Random clips of 10-12 frames (0.2 s): HuBERT-shaped features, audio, phonemes."""
    gen = torch.Generator().manual_seed(5)
    return [{"ssl": torch.randn(768, 12 - i, generator=gen), "wav": 0.3 * torch.randn((12 - i) * 640, generator=gen),
             "phones": torch.randint(1, 700, (6 + i,), generator=gen)} for i in range(count)]


def gpt_items(count: int = 3) -> list[dict]:
    """Token sequences with a learnable pattern (each token repeats the phoneme id's residue)."""
    gen = torch.Generator().manual_seed(6)
    items = []
    for i in range(count):
        phones = torch.randint(1, 700, (5 + i,), generator=gen)
        semantic = (torch.arange(8 + 2 * i) * 7 + i) % 1024
        items.append({"phones": phones, "bert": torch.zeros(1024, phones.shape[0]), "semantic": semantic})
    return items


def test_sovits_loss_decreases_on_a_fixed_batch():
    trainer = SoVITSTrainer(TINY_SOVITS, SoVITSTrainConfig(batch_size=2, learning_rate=2e-4, discriminator_narrow=16))
    history = []
    for step in range(4):
        loop.seed_step(1, 0)  # the same slices and noise every step: only the weights change
        history.append(trainer.train_step(sovits_items(), step, 0))
    assert history[-1]["mel"] < history[0]["mel"]
    assert history[-1]["g"] < history[0]["g"]
    assert history[-1]["d"] < history[0]["d"]


def test_gpt_loss_decreases_on_a_fixed_batch():
    trainer = GPTTrainer(TINY_GPT, GPTTrainConfig(batch_size=3, learning_rate=3e-3))
    losses = [trainer.train_step(gpt_items(), step, 0)["loss"] for step in range(12)]
    assert losses[-1] < 0.7 * losses[0]


def test_teacher_forced_scores_count_what_training_counts_and_separate_seen_from_unseen():
    trainer = GPTTrainer(TINY_GPT, GPTTrainConfig(batch_size=3, learning_rate=3e-3, dropout=0.0))
    seen, unseen = gpt_items(), gpt_items(6)[3:]  # other lengths, other patterns
    before = teacher_forced_scores(trainer.model, seen)
    for step in range(12):
        trainer.train_step(seen, step, 0)
    assert trainer.model.training  # scoring leaves the mode as it found it
    loss, accuracy = teacher_forced_scores(trainer.model, seen, batch_size=3)
    assert loss < 0.7 * before[0] and 0.0 <= accuracy <= 1.0
    for size in (1, 2):  # a padded item scores as it does alone (its first token read at its own last phoneme)
        alone = teacher_forced_scores(trainer.model, seen, batch_size=size)
        assert abs(alone[0] - loss) < 1e-5 and alone[1] == accuracy
    after_step = trainer.train_step(seen, 12, 0)  # the training loss of the same items and weights, before the update
    assert abs(after_step["loss"] - loss) < 1e-4 and abs(after_step["acc"] - accuracy) < 1e-6
    assert teacher_forced_scores(trainer.model, unseen)[0] > loss  # what it did not train on scores worse
    with pytest.raises(loop.TrainingError, match="no items"):
        teacher_forced_scores(trainer.model, [])


def _run_gpt(out: Path, interrupt_at: int | None = None) -> GPTTrainer:
    settings = GPTTrainConfig(epochs=3, batch_size=2, learning_rate=1e-3, save_every_epochs=1)
    trainer = GPTTrainer(TINY_GPT, settings)

    def stop(step: int) -> None:
        if step == interrupt_at:
            raise KeyboardInterrupt

    loop.run(trainer, gpt_items(), settings, out, "gpt", progress=None, on_step=stop)
    return trainer


def _same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_gpt_resume_after_interrupt_equals_an_uninterrupted_run(tmp_path):
    full = _run_gpt(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        _run_gpt(tmp_path / "cut", interrupt_at=3)  # mid-epoch 2 (2 steps per epoch)
    saved = loop.checkpoint_paths(tmp_path / "cut")
    assert saved[-1].name == "state_00000003.pt"  # Ctrl-C kept the last finished step
    resumed = _run_gpt(tmp_path / "cut")
    _same_weights(full.model.state_dict(), resumed.model.state_dict())
    assert not list((tmp_path / "cut" / "checkpoints").glob(".*partial"))


def test_sovits_resume_after_interrupt_equals_an_uninterrupted_run(tmp_path):
    settings = SoVITSTrainConfig(epochs=1, batch_size=1, save_every_epochs=1, learning_rate=2e-4, discriminator_narrow=16)
    full = SoVITSTrainer(TINY_SOVITS, settings)
    loop.run(full, sovits_items(), settings, tmp_path / "full", "sovits", progress=None)

    def stop(step: int) -> None:
        if step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.run(SoVITSTrainer(TINY_SOVITS, settings), sovits_items(), settings, tmp_path / "cut", "sovits",
                 progress=None, on_step=stop)
    resumed = SoVITSTrainer(TINY_SOVITS, settings)
    assert loop.run(resumed, sovits_items(), settings, tmp_path / "cut", "sovits", progress=None) == 2
    _same_weights(full.generator.state_dict(), resumed.generator.state_dict())
    _same_weights(full.discriminator.state_dict(), resumed.discriminator.state_dict())


def test_checkpoint_write_is_atomic(tmp_path):
    target = tmp_path / "state.pt"
    loop.atomic_save({"weights": torch.ones(3)}, target)
    with pytest.raises((AttributeError, pickle.PicklingError)):  # pickling fails half-way through the write
        loop.atomic_save({"weights": torch.zeros(3), "bad": lambda: None}, target)
    assert torch.equal(torch.load(target)["weights"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


def test_settings_round_trip_and_reject_typos(tmp_path):
    settings = SoVITSTrainConfig(epochs=3)
    settings.save(tmp_path / "s.json")
    assert SoVITSTrainConfig.load(tmp_path / "s.json") == settings
    with pytest.raises(ValueError, match="unknown"):
        GPTTrainConfig.from_dict({"epoch": 3})


def test_two_process_ddp_on_cpu_keeps_ranks_in_step(tmp_path):
    """torchrun, 2 processes, gloo: each rank trains on half the items; gradients are averaged."""
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    worker = Path(__file__).parent / "ddp_worker.py"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(port), str(worker), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text() == "world 2 steps 4 same True"
    assert [p.name for p in loop.checkpoint_paths(tmp_path)] == ["state_00000004.pt"]


def _learned_codebook_trainer(**settings) -> SoVITSTrainer:
    config = tiny_sovits(freeze_quantizer=False)
    return SoVITSTrainer(config, SoVITSTrainConfig(batch_size=2, discriminator_narrow=16, **settings))


def _copies(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_mel_only_warm_up_leaves_the_discriminator_alone_until_its_start_step():
    trainer = _learned_codebook_trainer(discriminator_start_step=2)
    disc = _copies(trainer.discriminator)
    for step in range(2):
        loop.seed_step(1, step)
        shown = trainer.train_step(sovits_items(), step, 0)
        assert shown["d"] == 0.0 and shown["mel"] > 0
    assert not _changed(disc, trainer.discriminator)
    loop.seed_step(1, 2)
    assert trainer.train_step(sovits_items(), 2, 0)["d"] > 0
    assert _changed(disc, trainer.discriminator)


def test_quantizer_freezes_after_its_steps_so_tokens_stop_changing():
    trainer = _learned_codebook_trainer(quantizer_steps=2)
    items = sovits_items()
    frozen = (trainer.generator.ssl_proj, trainer.generator.quantizer)
    for step in range(4):
        before = [_copies(m) for m in frozen]
        decoder = _copies(trainer.generator.dec)
        loop.seed_step(1, step)
        shown = trainer.train_step(items, step, 0)
        learning = step < 2
        assert ("vq_dead" in shown) == learning
        assert [_changed(b, m) for b, m in zip(before, frozen, strict=True)] == [learning, learning]
        assert _changed(decoder, trainer.generator.dec)  # the rest keeps training

    def tokens() -> list[torch.Tensor]:
        trainer.generator.eval()
        with torch.no_grad():
            out = [trainer.generator.extract_latent(item["ssl"].unsqueeze(0)) for item in items]
        trainer.generator.train()
        return out

    codes = tokens()
    loop.seed_step(1, 4)
    trainer.train_step(items, 4, 0)
    again = tokens()
    assert all(torch.equal(a, b) for a, b in zip(codes, again, strict=True))


def test_warm_up_settings_are_validated():
    with pytest.raises(Exception, match="discriminator_start_step"):
        SoVITSTrainConfig(discriminator_start_step=-1)


def test_crop_takes_an_aligned_window_of_long_clips_only():
    from myna.train.sovits_trainer import crop_item

    frames, hop = 40, TINY_SOVITS.hop_length
    item = {"ssl": torch.arange(frames).float().expand(768, frames), "wav": torch.arange(frames * hop).float(),
            "phones": torch.arange(7)}
    seconds = 10 * hop / TINY_SOVITS.sampling_rate  # 10 frames
    starts = set()
    for seed in range(20):
        torch.manual_seed(seed)
        window = crop_item(item, TINY_SOVITS, seconds)
        start = int(window["ssl"][0, 0])
        assert window["ssl"].shape[1] == 10 and start % 2 == 0
        assert torch.equal(window["wav"], torch.arange(start * hop, (start + 10) * hop).float())
        assert torch.equal(window["phones"], item["phones"])
        starts.add(start)
    assert len(starts) > 3  # the window moves
    short = {k: v[..., : 8 * hop] if k == "wav" else v[..., :8] if k == "ssl" else v for k, v in item.items()}
    assert crop_item(short, TINY_SOVITS, seconds)["wav"].shape[0] == 8 * hop


def test_crop_can_keep_only_the_phonemes_of_its_window():
    # at inference the phonemes cover just the decoded tokens; a window can be given its share of them
    from myna.train.sovits_trainer import PHONE_MARGIN_SECONDS, crop_item

    frames, hop = 200, TINY_SOVITS.hop_length
    item = {"ssl": torch.arange(frames).float().expand(768, frames), "wav": torch.zeros(frames * hop),
            "phones": torch.arange(frames // 4)}  # a phoneme every 4 frames
    margin = PHONE_MARGIN_SECONDS * TINY_SOVITS.sampling_rate / hop
    seconds = 40 * hop / TINY_SOVITS.sampling_rate
    for seed in range(20):
        torch.manual_seed(seed)
        window = crop_item(item, TINY_SOVITS, seconds, phones=True)
        start = int(window["ssl"][0, 0])
        kept = window["phones"].tolist()
        assert kept == list(range(kept[0], kept[-1] + 1))  # a run of the clip's phonemes, in order
        assert kept[0] <= max(0, (start - margin) / 4) and kept[-1] >= min(frames // 4 - 1, (start + 40 + margin) / 4 - 1)
        assert len(kept) <= (40 + 2 * margin) / 4 + 2  # and not many more
        torch.manual_seed(seed)
        assert torch.equal(crop_item(item, TINY_SOVITS, seconds)["phones"], item["phones"])  # the default: whole


def test_a_crop_keeps_each_frames_phoneme_on_the_phonemes_it_keeps():
    from myna.train.sovits_trainer import collate, crop_item

    frames, hop = 200, TINY_SOVITS.hop_length
    where = torch.arange(frames) // 4 - 2  # a phoneme every 4 frames, the first 8 frames before the first phoneme
    item = {"ssl": torch.arange(frames).float().expand(768, frames), "wav": torch.zeros(frames * hop),
            "phones": torch.arange(100, 100 + frames // 4), "phone_positions": where.clamp(min=-1)}
    seconds = 40 * hop / TINY_SOVITS.sampling_rate
    for seed in range(20):
        torch.manual_seed(seed)
        window = crop_item(item, TINY_SOVITS, seconds, phones=True)
        start = int(window["ssl"][0, 0])
        original = item["phone_positions"][start : start + 40]
        kept = window["phone_positions"]
        assert kept.shape == (40,)
        known = kept >= 0
        # a frame's kept index names the same phoneme in the window's phonemes as its old index did in the clip's
        assert torch.equal(window["phones"][kept[known]], item["phones"][original[known]])
        assert bool((original[known] >= 0).all()) and float(known.float().mean()) > 0.5  # most keep their phoneme
        torch.manual_seed(seed)
        assert torch.equal(crop_item(item, TINY_SOVITS, seconds)["phone_positions"], original)  # whole phonemes
    bare = {k: v for k, v in item.items() if k != "phone_positions"}
    batch = collate([item, bare], TINY_SOVITS)
    assert batch["phone_positions"].shape == batch["spec"].shape[::2]  # one per spectrogram frame
    assert torch.equal(batch["phone_positions"][0, :frames], item["phone_positions"][: batch["spec"].shape[2]])
    assert bool((batch["phone_positions"][1] == -1).all())  # an item without an alignment: nothing known
    assert "phone_positions" not in collate([bare], TINY_SOVITS)


def test_aligned_attention_loss_rewards_attention_on_the_aligned_phoneme():
    from myna.train.losses import aligned_attention_loss

    positions = torch.tensor([[0, 0, 1, 2, 2, -1], [1, 1, 0, -1, -1, -1]])
    on = torch.nn.functional.one_hot(positions.clamp(min=0), 3).float()
    even = torch.full((2, 6, 3), 1 / 3)
    assert float(aligned_attention_loss(on, positions)) == pytest.approx(0.0, abs=1e-5)
    assert float(aligned_attention_loss(even, positions)) == pytest.approx(math.log(3), rel=1e-5)
    elsewhere = on.clone()
    elsewhere[positions < 0] = torch.tensor([0.0, 0.0, 1.0])  # frames without a phoneme do not count
    assert float(aligned_attention_loss(elsewhere, positions)) == pytest.approx(0.0, abs=1e-5)
    weights = even.clone().requires_grad_()
    loss = aligned_attention_loss(weights, torch.full((2, 6), -1))
    loss.backward()  # nothing known: 0, and still part of the graph
    assert float(loss.detach()) == 0.0 and weights.grad is not None


def test_sovits_trains_on_cropped_clips():
    trainer = SoVITSTrainer(TINY_SOVITS, SoVITSTrainConfig(batch_size=2, discriminator_narrow=16,
                                                           crop_seconds=6 * 640 / TINY_SOVITS.sampling_rate))
    loop.seed_step(1, 0)
    shown = trainer.train_step(sovits_items(), 0, 0)
    assert all(torch.isfinite(torch.tensor(v)) for v in shown.values())


def test_bf16_sovits_training_autocasts_forward_and_keeps_fp32_weights():
    def first_steps(precision: str) -> list[dict[str, float]]:
        trainer = SoVITSTrainer(TINY_SOVITS, SoVITSTrainConfig(batch_size=2, learning_rate=2e-4, discriminator_narrow=16,
                                                               precision=precision))
        shown = []
        for step in range(4):
            loop.seed_step(1, 0)
            shown.append(trainer.train_step(sovits_items(), step, 0))
        assert all(p.dtype == torch.float32 for p in trainer.generator.parameters())
        assert all(p.dtype == torch.float32 for p in trainer.discriminator.parameters())
        return shown

    fp32, bf16 = first_steps("fp32"), first_steps("bf16")
    assert bf16[0]["g"] != fp32[0]["g"]  # the forward really ran in bfloat16
    assert bf16[0]["g"] == pytest.approx(fp32[0]["g"], rel=0.05)
    assert bf16[-1]["mel"] < bf16[0]["mel"] and bf16[-1]["d"] < bf16[0]["d"]


def test_bf16_gpt_training_learns_like_fp32():
    def losses(precision: str) -> list[float]:
        trainer = GPTTrainer(TINY_GPT, GPTTrainConfig(batch_size=3, learning_rate=3e-3, precision=precision))
        out = [trainer.train_step(gpt_items(), step, 0)["loss"] for step in range(12)]
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
        return out

    fp32, bf16 = losses("fp32"), losses("bf16")
    assert bf16[0] != fp32[0] and bf16[0] == pytest.approx(fp32[0], rel=0.02)
    assert bf16[-1] < 0.7 * bf16[0]


def test_training_precision_is_validated():
    with pytest.raises(ValueError, match="precision"):
        GPTTrainConfig(precision="fp16")


def test_gpt_batch_run_in_parts_takes_the_same_step():
    """A batch over the attention budget is split into parts whose gradients add up to the whole batch's."""
    gen = torch.Generator().manual_seed(8)
    items = [{"phones": torch.randint(1, 700, (6,), generator=gen), "bert": torch.zeros(1024, 6),
              "semantic": torch.randint(0, 1024, (10,), generator=gen)} for _ in range(3)]  # equal lengths: no padding
    whole = GPTTrainer(TINY_GPT, GPTTrainConfig(batch_size=3, learning_rate=1e-3, dropout=0.0, attention_budget=0))
    parts = GPTTrainer(TINY_GPT, GPTTrainConfig(batch_size=3, learning_rate=1e-3, dropout=0.0, attention_budget=600))
    assert [len(c) for c in parts._chunks(items)] == [2, 1]  # 17 positions each: 2 x 17^2 fit in 600
    a, b = whole.train_step(items, 0, 0), parts.train_step(items, 0, 0)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["acc"] == pytest.approx(b["acc"])
    # the gradients the optimizer stepped with are equal up to float32 summation order; the weights after
    # Adam's first step are not a fair comparison: it divides each gradient by its own size, so a gradient
    # near zero turns rounding noise into a step of up to the learning rate (seen with 2 threads)
    for (name, x), y in zip(whole.model.named_parameters(), parts.model.parameters(), strict=True):
        assert x.grad is not None and y.grad is not None, name
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-4, atol=1e-7, msg=name)


def test_frozen_tokens_never_change_and_add_no_commitment_loss():
    trainer = _learned_codebook_trainer(freeze_tokens=True, discriminator_start_step=10)
    frozen = (trainer.generator.ssl_proj, trainer.generator.quantizer)
    before = [_copies(m) for m in frozen]
    decoder = _copies(trainer.generator.dec)
    for step in range(2):
        loop.seed_step(1, step)
        shown = trainer.train_step(sovits_items(), step, 0)
        assert "vq_dead" not in shown
        assert shown["g"] == pytest.approx(shown["mel"] + shown["kl"], rel=1e-5)
    assert not any(_changed(b, m) for b, m in zip(before, frozen, strict=True))
    assert _changed(decoder, trainer.generator.dec)


def test_learning_rate_warms_up_from_the_warm_start_step():
    trainer = SoVITSTrainer(TINY_SOVITS, SoVITSTrainConfig(batch_size=2, discriminator_narrow=16, warmup_steps=4,
                                                           learning_rate=1e-3, lr_decay=1.0))
    trainer.warm_start = 10
    trainer._set_rates(0, 11)
    assert trainer.optim_g.param_groups[0]["lr"] == pytest.approx(1e-3 * 2 / 4)
    trainer._set_rates(0, 20)
    assert trainer.optim_g.param_groups[0]["lr"] == pytest.approx(1e-3)
    with pytest.raises(Exception, match="warmup_steps"):
        SoVITSTrainConfig(warmup_steps=-1)


def test_a_stop_callback_ends_the_run_with_its_state_saved(tmp_path):
    settings = GPTTrainConfig(epochs=3, batch_size=2, learning_rate=1e-3, save_every_epochs=10)
    steps = loop.run(GPTTrainer(TINY_GPT, settings), gpt_items(), settings, tmp_path, "gpt", progress=None,
                     stop=lambda step: step >= 3)
    assert steps == 3
    assert [p.name for p in loop.checkpoint_paths(tmp_path)] == ["state_00000003.pt"]


def test_prior_latent_trains_the_inference_path_without_a_posterior():
    settings = SoVITSTrainConfig(batch_size=2, learning_rate=1e-3, discriminator_narrow=16, latent="prior",
                                 discriminator_start_step=100)
    config = tiny_sovits(decoder="istft", decoder_channels=32, decoder_layers=2)
    trainer = SoVITSTrainer(config, settings)
    assert not hasattr(trainer.generator, "enc_q")  # nothing to train or export that inference never runs
    prior_side = _copies(trainer.generator.enc_p)
    history = []
    for step in range(6):
        loop.seed_step(1, 0)
        history.append(trainer.train_step(sovits_items(), step, 0))
    assert all(h["kl"] == 0.0 for h in history)
    assert history[-1]["mel"] < history[0]["mel"]
    assert _changed(prior_side, trainer.generator.enc_p)  # the decoder's loss reaches the prior encoder
    with pytest.raises(Exception, match="latent"):
        SoVITSTrainConfig(latent="both")


def _whole_clip_decoder():
    """A tiny model decoding one 12-frame clip as a single segment (with distinct codes: a fresh codebook is all
    zeros, every code alike), the clip, its spectrogram and the (frames, phonemes) lengths."""
    from myna.audio.spectrogram import linear_spectrogram
    from myna.models.sovits import SoVITS

    torch.manual_seed(0)
    config = tiny_sovits(segment_size=12 * 640)
    model = SoVITS(config).eval()
    model.quantizer.vq.layers[0]._codebook.embed.normal_()
    item = sovits_items(1)[0]
    spec = linear_spectrogram(item["wav"], config.filter_length, config.hop_length, config.win_length)
    return model, item, spec, (torch.tensor([spec.shape[2]]), torch.tensor([item["phones"].shape[0]]))


def test_prior_latent_decodes_what_inference_decodes():
    model, item, spec, lengths = _whole_clip_decoder()
    with torch.no_grad():
        out = model.forward_train(item["ssl"][None], spec, lengths[0], item["phones"][None], lengths[1],
                                  prior_noise=0.0)
        codes = model.extract_latent(item["ssl"][None])
        expected = model.decode(codes, item["phones"], spec, noise_scale=0.0)
    # the training pass decodes the whole clip here (one segment): the same audio as inference
    assert out.z_p is None and out.logs_q is None
    frames = min(out.audio.shape[-1], expected.shape[-1])
    scale = float(expected.abs().max())  # a random model's audio is tiny: compare at its scale
    assert scale > 0
    torch.testing.assert_close(out.audio[..., :frames], expected[..., :frames], rtol=0, atol=1e-4 * scale)


def test_token_noise_decodes_randomly_replaced_codes_as_inference_would():
    # the decoder trained with token_noise sees the tokens the GPT might get wrong: some frames' codes drawn at random
    from myna.models.sovits import replace_codes_at_random

    codes = torch.zeros(2, 4, 5000, dtype=torch.long)
    noisy = replace_codes_at_random(codes, 0.3, 1024, torch.Generator().manual_seed(1))
    changed = noisy != 0
    assert 0.27 < changed.any(0).float().mean() < 0.33  # the share of frames
    assert (changed[0] | changed[1]).sum() - (changed[0] & changed[1]).sum() < 20  # a frame's stages together
    model, item, spec, lengths = _whole_clip_decoder()

    def trained(token_noise: float):
        return model.forward_train(item["ssl"][None], spec, lengths[0], item["phones"][None], lengths[1],
                                   generator=torch.Generator().manual_seed(5), prior_noise=0.0,
                                   token_noise=token_noise)

    with torch.no_grad():
        clean_out, noised_out = trained(0.0), trained(0.5)
        clean, noised = clean_out.audio, noised_out.audio
        assert torch.equal(noised_out.codes, clean_out.codes)  # the true codes, for a codebook learning from them
        replaced = replace_codes_at_random(model.extract_latent(item["ssl"][None]), 0.5, 1024,
                                      torch.Generator().manual_seed(5))
        expected = model.decode(replaced, item["phones"], spec, noise_scale=0.0)
    frames = min(noised.shape[-1], expected.shape[-1])
    scale = float(expected.abs().max())  # a random model's audio is tiny: compare at its scale
    assert scale > 0
    torch.testing.assert_close(noised[..., :frames], expected[..., :frames], rtol=0, atol=1e-4 * scale)
    assert float((noised - clean).abs().max()) > 0.05 * scale
    with pytest.raises(Exception, match="token_noise"):
        SoVITSTrainConfig(token_noise=1.0)


def test_token_noise_can_replace_runs_of_frames():
    # a single wrong frame can be guessed from its neighbours; runs of them cannot
    from myna.models.sovits import replace_codes_at_random

    codes = torch.zeros(2, 4, 5000, dtype=torch.long)

    def runs(span: int) -> tuple[float, list[int]]:
        changed = (replace_codes_at_random(codes, 0.3, 1024, torch.Generator().manual_seed(1), span=span) != 0).any(0)
        lengths = []
        for row in changed.int().tolist():
            text = "".join(map(str, row)).strip("1")  # runs cut by either end can be short
            lengths += [len(run) for run in text.split("0") if run]
        return float(changed.float().mean()), lengths

    share, lengths = runs(4)
    assert 0.27 < share < 0.33  # the share of frames stays the asked one
    assert lengths and min(lengths) >= 4
    share, lengths = runs(1)
    assert 0.27 < share < 0.33 and lengths.count(1) > 100  # span 1: lone frames
    with pytest.raises(Exception, match="token_noise_span"):
        SoVITSTrainConfig(token_noise_span=0)


def test_blanked_token_frames_leave_the_phonemes_alone_to_say_what_is_there():
    from myna.models.sovits import noised_frames

    model, item, spec, lengths = _whole_clip_decoder()
    other_ssl = torch.randn(item["ssl"].shape, generator=torch.Generator().manual_seed(9))

    def prior_mean(ssl: torch.Tensor, blank: float, phones: torch.Tensor = item["phones"]):
        out = model.forward_train(ssl[None], spec, lengths[0], phones[None], lengths[1], prior_noise=0.0,
                                  generator=torch.Generator().manual_seed(5), token_blank=blank)
        return out.m_p, out.codes

    with torch.no_grad():
        tokens = model.extract_latent(item["ssl"][None]).shape[-1]
        # this draw blanks every token frame of the clip: what the tokens say no longer matters, the phonemes do
        assert noised_frames((1, tokens), 0.95, 1, torch.Generator().manual_seed(5)).all()
        blanked, codes = prior_mean(item["ssl"], 0.95)
        assert torch.equal(codes, model.extract_latent(item["ssl"][None]))  # the true codes are still returned
        torch.testing.assert_close(prior_mean(other_ssl, 0.95)[0], blanked)
        assert not torch.allclose(prior_mean(item["ssl"], 0.95, item["phones"].flip(0))[0], blanked)
        assert not torch.allclose(prior_mean(other_ssl, 0.0)[0], prior_mean(item["ssl"], 0.0)[0])
        # a smaller share blanks runs of frames only: the tokens still reach the rest
        assert not torch.allclose(prior_mean(other_ssl, 0.3)[0], prior_mean(item["ssl"], 0.3)[0])
    with pytest.raises(Exception, match="token_blank"):
        SoVITSTrainConfig(token_blank=1.0)


def test_guided_attention_loss_is_low_on_the_diagonal_and_high_when_parked():
    from myna.train.losses import guided_attention_loss

    frames, phones = torch.tensor([40, 30]), torch.tensor([10, 6])
    diagonal = torch.zeros(2, 40, 10)
    parked = torch.zeros(2, 40, 10)
    for b in range(2):
        for t in range(int(frames[b])):
            diagonal[b, t, t * int(phones[b]) // int(frames[b])] = 1
            parked[b, t, int(phones[b]) - 1] = 1  # every frame on the last phoneme (a sink)
    on_diagonal = float(guided_attention_loss(diagonal, frames, phones))
    assert on_diagonal < 0.05 and float(guided_attention_loss(parked, frames, phones)) > 0.3
    padded = diagonal.clone()
    padded[1, 30:, :] = 1.0  # past a clip's frames and phonemes nothing counts
    padded[1, :, 6:] = 1.0
    assert float(guided_attention_loss(padded, frames, phones)) == pytest.approx(on_diagonal)


def _text_attention(model, item: dict, spec: torch.Tensor, with_attention: bool = True) -> torch.Tensor | None:
    """MRTE's attention (1, T, N) in `model`'s training pass over one item (no gradient)."""
    with torch.no_grad():
        return model.forward_train(item["ssl"][None], spec, torch.tensor([spec.shape[2]]), item["phones"][None],
                                   torch.tensor([item["phones"].shape[0]]), generator=torch.Generator().manual_seed(5),
                                   prior_noise=0.5, with_attention=with_attention).text_attention


def _train_text_attention(item: dict, measure, **settings) -> tuple[float, float, dict[str, float]]:
    """`measure(generator)` before and after 16 steps of a tiny trainer with `settings` on `item`, and what the last
    step showed; measured in eval mode (no dropout), training resumes in train mode."""
    torch.manual_seed(0)
    trainer = SoVITSTrainer(TINY_SOVITS, SoVITSTrainConfig(batch_size=1, learning_rate=5e-3, discriminator_narrow=16,
                                                           discriminator_start_step=100, **settings))

    def measured() -> float:
        trainer.generator.eval()
        try:
            return float(measure(trainer.generator))
        finally:
            trainer.generator.train()

    before = measured()
    for step in range(16):
        loop.seed_step(1, step)
        shown = trainer.train_step([item], step, 0)
    return before, measured(), shown


def test_mrte_guide_trains_the_text_attention_towards_the_diagonal():
    from myna.audio.spectrogram import linear_spectrogram
    from myna.models.sovits import SoVITS
    from myna.train.losses import guided_attention_loss

    item = sovits_items(1)[0]
    config = tiny_sovits(segment_size=12 * 640)
    model = SoVITS(config, with_posterior=True).eval()
    spec = linear_spectrogram(item["wav"], config.filter_length, config.hop_length, config.win_length)
    lengths = torch.tensor([spec.shape[2]]), torch.tensor([item["phones"].shape[0]])
    weights = _text_attention(model, item, spec)
    assert weights.shape == (1, spec.shape[2], item["phones"].shape[0])
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, spec.shape[2]))  # a distribution over the phonemes
    assert _text_attention(model, item, spec, with_attention=False) is None

    def guide_loss(generator) -> torch.Tensor:
        return guided_attention_loss(_text_attention(generator, item, spec), *lengths)

    start, unguided, shown = _train_text_attention(item, guide_loss)
    assert "guide" not in shown
    same_start, guided, shown = _train_text_attention(item, guide_loss, mrte_guide=50.0)
    assert same_start == start and "guide" in shown
    # no position reaches MRTE (the attention can only match content), so random features move it a little
    assert guided < min(start, unguided) - 0.03
    with pytest.raises(Exception, match="mrte_guide"):
        SoVITSTrainConfig(mrte_guide=-1.0)


def test_mrte_align_pulls_the_text_attention_onto_the_aligned_phonemes():
    from myna.audio.spectrogram import linear_spectrogram
    from myna.train.losses import aligned_attention_loss

    item = dict(sovits_items(1)[0])
    spec = linear_spectrogram(item["wav"], TINY_SOVITS.filter_length, TINY_SOVITS.hop_length, TINY_SOVITS.win_length)
    frames, phones = spec.shape[2], item["phones"].shape[0]
    item["phone_positions"] = torch.arange(frames) * phones // frames  # an even pace through the phonemes

    def align_loss(generator) -> torch.Tensor:
        return aligned_attention_loss(_text_attention(generator, item, spec), item["phone_positions"][None])

    start, free, shown = _train_text_attention(item, align_loss)
    assert "align" not in shown
    same_start, aligned, shown = _train_text_attention(item, align_loss, mrte_align=5.0)
    assert same_start == start and "align" in shown
    assert aligned < min(start, free) - 0.1
    with pytest.raises(Exception, match="mrte_align"):
        SoVITSTrainConfig(mrte_align=-1.0)


def test_a_resumed_run_takes_its_own_text_learning_rate():
    # the optimizer's saved groups carry the old run's text-side scale; the resuming run's setting wins
    first = SoVITSTrainer(TINY_SOVITS, SoVITSTrainConfig(batch_size=1, discriminator_narrow=16, text_low_lr_rate=0.4))
    state = first.state()
    second = SoVITSTrainer(TINY_SOVITS, SoVITSTrainConfig(batch_size=1, discriminator_narrow=16, text_low_lr_rate=5.0))
    second.load_state(state)
    second._set_rates(0, 10_000)
    base, text = second.optim_g.param_groups
    assert text["lr"] == pytest.approx(base["lr"] * 5.0)
