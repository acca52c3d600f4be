"""SoVITS: upstream key names and shapes (v1/v2/v2Pro/v2ProPlus), bit-level parity of extract_latent and
decode with upstream GPT-SoVITS commit 48b1a01 (data/sovits_upstream.json), speed, references, noise."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import sovits_fixtures as fx
import torch

from myna.errors import InputError
from myna.models.sovits import SoVITS, SoVITSConfig

DATA = Path(__file__).parent / "data"
KEYS = json.loads((DATA / "sovits_keys.json").read_text(encoding="utf-8"))
UPSTREAM = json.loads((DATA / "sovits_upstream.json").read_text(encoding="utf-8"))["cases"]
TOLERANCE = 1e-5  # observed: bit-identical on x86-64 CPU, one thread

S2_V2 = {  # GPT_SoVITS/configs/s2.json: the sections the model reads
    "train": {"segment_size": 20480},
    "data": {
        "max_wav_value": 32768.0,
        "sampling_rate": 32000,
        "filter_length": 2048,
        "hop_length": 640,
        "win_length": 2048,
        "n_mel_channels": 128,
        "mel_fmin": 0.0,
        "mel_fmax": None,
        "add_blank": True,
        "n_speakers": 300,
        "cleaned_text": True,
    },
    "model": {
        "inter_channels": 192,
        "hidden_channels": 192,
        "filter_channels": 768,
        "n_heads": 2,
        "n_layers": 6,
        "kernel_size": 3,
        "p_dropout": 0.1,
        "resblock": "1",
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_rates": [10, 8, 2, 2, 2],
        "upsample_initial_channel": 512,
        "upsample_kernel_sizes": [16, 16, 8, 2, 2],
        "n_layers_q": 3,
        "use_spectral_norm": False,
        "gin_channels": 512,
        "semantic_frame_rate": "25hz",
        "freeze_quantizer": True,
    },
}
S2_PRO = copy.deepcopy(S2_V2)  # s2v2Pro.json
S2_PRO["model"].update(p_dropout=0.0, gin_channels=1024)
S2_PRO_PLUS = copy.deepcopy(S2_PRO)  # s2v2ProPlus.json
S2_PRO_PLUS["model"].update(upsample_initial_channel=768, upsample_kernel_sizes=[20, 16, 8, 2, 2])
BASE = {"v1": S2_V2, "v2": S2_V2, "v2Pro": S2_PRO, "v2ProPlus": S2_PRO_PLUS}


def expected_shapes(name: str) -> dict[str, list[int]]:
    """Upstream's key -> shape map for `name` ("v2/full", "v1/tiny", ...), resolving stored differences."""
    entry = KEYS[name]
    if "base" not in entry:
        return dict(entry["shapes"])
    shapes = {k: v for k, v in expected_shapes(entry["base"]).items() if k not in set(entry["removed"])}
    shapes.update(entry["shapes"])
    return shapes


def config_for(version: str, size: str) -> SoVITSConfig:
    return SoVITSConfig.from_dict(fx.upstream_hps(BASE[version], version, tiny=size == "tiny"))


def shapes(model: SoVITS) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


_TINY: dict[str, SoVITS] = {}


def tiny(version: str) -> SoVITS:
    """The tiny model of `version` with the seeded weights upstream's reference run used."""
    if version not in _TINY:
        torch.manual_seed(0)
        model = SoVITS(config_for(version, "tiny")).eval()
        model.load_state_dict(fx.tiny_weights(expected_shapes(f"{version}/tiny")), strict=True)
        _TINY[version] = model
    return _TINY[version]


def sv(version: str, inputs: dict, *names: str) -> torch.Tensor | list[torch.Tensor] | None:
    if version not in ("v2Pro", "v2ProPlus"):
        return None
    embs = [inputs[f"sv_{n}"] for n in names]
    return embs[0] if len(names) == 1 and names[0] == "a" else embs


def assert_matches(wave: torch.Tensor, ref: dict) -> None:
    got = fx.summarize(wave)
    assert got["length"] == ref["length"]
    for part in ("head", "tail", "stride_256"):
        diff = max(abs(a - b) for a, b in zip(got[part], ref[part], strict=True))
        assert diff <= TOLERANCE, f"{part}: max abs diff {diff:.3g}"
    assert got["abs_sum"] == pytest.approx(ref["abs_sum"], abs=TOLERANCE * ref["length"])
    assert got["sum"] == pytest.approx(ref["sum"], abs=TOLERANCE * ref["length"])


@pytest.mark.parametrize("name", list(KEYS))
def test_keys_and_shapes_equal_upstream(name: str) -> None:
    version, size = name.split("/")
    with torch.device("meta"):
        model = SoVITS(config_for(version, size))
    assert shapes(model) == expected_shapes(name)


def test_full_v2_key_order_and_size() -> None:
    with torch.device("meta"):
        model = SoVITS(SoVITSConfig.from_dict(S2_V2))
    assert list(model.state_dict()) == list(KEYS["v2/full"]["shapes"])
    assert model.config.spec_channels == 1025 and model.config.n_symbols == 732
    assert sum(v.numel() for v in model.state_dict().values()) == 42389633  # upstream, without enc_q


def test_posterior_encoder_only_on_request() -> None:
    with torch.device("meta"):
        plain = SoVITS(SoVITSConfig.from_dict(S2_V2))
        training = SoVITS(SoVITSConfig.from_dict(S2_V2), with_posterior=True)
    extra = set(training.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("enc_q.") for k in extra)
    assert not any(k.startswith("enc_q.") for k in plain.state_dict())


@pytest.mark.parametrize("version", fx.TINY_VERSIONS)
def test_extract_latent_equals_upstream(version: str) -> None:
    codes = tiny(version).extract_latent(fx.tiny_inputs(version)["ssl"])
    assert codes.shape == (1, 1, 15)
    assert codes.tolist() == UPSTREAM[version]["codes"]


@pytest.mark.parametrize("version", fx.TINY_VERSIONS)
def test_decode_equals_upstream(version: str) -> None:
    model, x, ref = tiny(version), fx.tiny_inputs(version), UPSTREAM[version]
    one = sv(version, x, "a")
    assert_matches(
        model.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=0.0, sv_emb=one), ref["decode"]
    )
    two = model.decode(
        x["codes"],
        x["phones"],
        [x["refer_a"], x["refer_b"]],
        noise_scale=0.0,
        sv_emb=sv(version, x, "a", "b"),
    )
    assert_matches(two, ref["decode_two_refs"])
    for speed in (0.7, 1.3):
        wave = model.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=0.0, speed=speed, sv_emb=one)
        assert_matches(wave, ref[f"decode_speed_{speed}"])
    gen = torch.Generator().manual_seed(1234)  # upstream: torch.manual_seed(1234) + randn_like
    noisy = model.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=0.6, sv_emb=one, generator=gen)
    assert_matches(noisy, ref["decode_noise_0.6_seed_1234"])


@pytest.mark.parametrize("speed", [0.5, 0.7, 1.0, 1.3, 2.0])
def test_speed_sets_length_like_upstream(speed: float) -> None:
    model, x = tiny("v2"), fx.tiny_inputs("v2")
    wave = model.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=0.0, speed=speed)
    frames = 2 * x["codes"].shape[-1]
    expected = frames if speed == 1 else int(frames / speed) + 1
    assert wave.shape == (1, 1, expected * 640)


def test_references_are_averaged() -> None:
    model, x = tiny("v2"), fx.tiny_inputs("v2")
    ge_a, ge_b = model.timbre(x["refer_a"]), model.timbre(x["refer_b"])
    assert ge_a.shape == (1, 512, 1)
    assert torch.equal(model.timbre([x["refer_a"], x["refer_b"]]), torch.stack([ge_a, ge_b]).mean(0))
    assert torch.equal(model.timbre([x["refer_a"]]), ge_a)
    single = model.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=0.0)
    assert torch.equal(single, model.decode(x["codes"], x["phones"], [x["refer_a"]], noise_scale=0.0))


def test_noise_is_deterministic_with_a_generator() -> None:
    model, x = tiny("v2"), fx.tiny_inputs("v2")

    def run(seed: int, scale: float = 0.5) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return model.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=scale, generator=gen)

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))
    assert torch.equal(run(7, 0.0), run(8, 0.0))


def test_reconstruct_decodes_the_posterior_mean_of_each_clip() -> None:
    x = fx.tiny_inputs("v2")
    with pytest.raises(RuntimeError, match="posterior encoder"):
        tiny("v2").reconstruct(x["refer_a"])
    torch.manual_seed(0)
    model = SoVITS(config_for("v2", "tiny"), with_posterior=True).eval()
    model.load_state_dict(fx.tiny_weights(expected_shapes("v2/tiny")), strict=False)  # enc_q keeps its seeded init
    rng = torch.get_rng_state()
    wave = model.reconstruct(x["refer_a"])
    assert torch.equal(torch.get_rng_state(), rng)  # the mean only: no draw from the global RNG
    assert wave.shape == (1, 1, x["refer_a"].shape[2] * 640) and torch.isfinite(wave).all()
    assert torch.equal(model.reconstruct(x["refer_a"]), wave)
    other = model.reconstruct(x["refer_b"])
    assert other.shape[-1] == x["refer_b"].shape[2] * 640 and not torch.equal(other[..., :640], wave[..., :640])
    # a batch of two clips: each is decoded as it would be alone
    both = model.reconstruct(torch.cat([x["refer_a"], x["refer_a"]]))
    assert torch.allclose(both[0], wave[0], atol=1e-5) and torch.allclose(both[1], wave[0], atol=1e-5)


def test_code_shapes_accepted() -> None:
    model, x = tiny("v2"), fx.tiny_inputs("v2")
    full = model.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=0.0)
    assert torch.equal(full, model.decode(x["codes"][0, 0], x["phones"][0], x["refer_a"], noise_scale=0.0))
    assert torch.equal(full, model.decode(x["codes"][0], x["phones"], x["refer_a"], noise_scale=0.0))


def test_fold_weight_norm_keeps_output() -> None:
    x = fx.tiny_inputs("v2")
    model = SoVITS(config_for("v2", "tiny")).eval()
    model.load_state_dict(fx.tiny_weights(expected_shapes("v2/tiny")), strict=True)
    before = model.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=0.0)
    model.fold_weight_norm()
    assert not any(k.endswith(("weight_g", "weight_v")) for k in model.state_dict())
    assert torch.equal(before, model.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=0.0))


def _stage_dtypes(dec: torch.nn.Module, run) -> dict[str, torch.dtype]:
    """The dtype each vocoder layer's input had during `run()`."""
    seen: dict[str, torch.dtype] = {}
    names = ["conv_pre", "conv_post"] + [f"ups.{i}" for i in range(len(dec.ups))]
    hooks = [dec.get_submodule(n).register_forward_pre_hook(lambda _m, a, n=n: seen.__setitem__(n, a[0].dtype))
             for n in names]
    with torch.no_grad():
        out = run()
    for hook in hooks:
        hook.remove()
    seen["out"] = out.dtype
    return seen


def test_vocoder_keeps_its_last_stage_in_fp32_under_autocast_and_with_a_bf16_head() -> None:
    model = tiny("v2")
    dec, last = model.dec, f"ups.{len(model.dec.ups) - 1}"
    z, g = torch.randn(1, dec.conv_pre.in_channels, 6), torch.randn(1, dec.cond.in_channels, 1)
    exact = dec(z, g)

    def autocast():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return dec(z, g)

    seen = _stage_dtypes(dec, autocast)
    assert seen["ups.0"] == torch.bfloat16  # the head runs in bf16 ...
    assert seen[last] == seen["conv_post"] == seen["out"] == torch.float32  # ... the last stage does not

    dec.half_head(torch.bfloat16)
    assert dec.conv_pre.weight.dtype == dec.ups[0].weight_v.dtype == torch.bfloat16
    assert dec.conv_post.weight.dtype == torch.float32
    seen = _stage_dtypes(dec, lambda: dec(z, g))  # fp32 latents in: cast on the way
    assert seen["conv_pre"] == seen["ups.0"] == torch.bfloat16
    assert seen[last] == seen["out"] == torch.float32
    half = dec(z, g)
    noise = (half - exact).pow(2).mean() / exact.pow(2).mean()
    assert 0 < noise < 1e-3


def test_bad_inputs_raise_input_error() -> None:
    x = fx.tiny_inputs("v2Pro")
    pro, v2 = tiny("v2Pro"), tiny("v2")
    with pytest.raises(InputError, match="speaker-verification"):
        pro.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=0.0)
    with pytest.raises(InputError, match="one speaker-verification embedding per reference"):
        pro.decode(x["codes"], x["phones"], [x["refer_a"], x["refer_b"]], sv_emb=[x["sv_a"]])
    with pytest.raises(InputError, match="reference spectrogram"):
        v2.decode(x["codes"], x["phones"], x["refer_a"][:, :100])
    with pytest.raises(InputError, match="speed"):
        v2.decode(x["codes"], x["phones"], x["refer_a"], speed=0)
    with pytest.raises(InputError, match="at least one"):
        v2.decode(x["codes"][..., :0], x["phones"], x["refer_a"])
    with pytest.raises(InputError, match="322-symbol"):
        tiny("v1").decode(x["codes"], torch.tensor([[400, 3]]), x["refer_a"])
    with pytest.raises(InputError, match="EOS"):
        v2.decode(torch.tensor([5, 1024]), x["phones"], x["refer_a"])
    with pytest.raises(InputError, match="ssl_features"):
        v2.extract_latent(torch.zeros(1, 100, 8))


def test_config_from_upstream_hps() -> None:
    config = SoVITSConfig.from_dict(S2_V2)
    assert config == SoVITSConfig()
    assert config.extra["n_mel_channels"] == 128
    assert SoVITSConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()
    assert SoVITSConfig.from_dict(S2_V2, version="v1").n_symbols == 322
    pro = SoVITSConfig.from_dict({**S2_PRO, "model": {**S2_PRO["model"], "version": "v2Pro"}})
    assert pro.is_pro and pro.gin_channels == 1024
    with pytest.raises(InputError, match="v3"):
        SoVITSConfig.from_dict(S2_V2, version="v3")
    with pytest.raises(InputError, match="gin_channels"):
        SoVITSConfig.from_dict({**S2_V2, "model": {**S2_V2["model"], "gin_channels": 256}})


def test_the_text_position_prior_is_an_opt_in_addition() -> None:
    from myna.train.text_attention import attention_figures

    plain = SoVITSConfig.from_dict(S2_V2)
    assert "text_position_prior" not in plain.to_dict()["model"]  # upstream's files keep their keys
    with torch.device("meta"):
        assert not any("position_scale" in key for key in SoVITS(plain).state_dict())
    config = SoVITSConfig(**fx.TINY_OVERRIDES, text_position_prior=True)
    assert SoVITSConfig.from_dict(config.to_dict()).text_position_prior  # and ours round-trip it
    torch.manual_seed(0)
    prior = SoVITS(config).eval()
    torch.manual_seed(0)
    free = SoVITS(SoVITSConfig(**fx.TINY_OVERRIDES)).eval()
    assert set(prior.state_dict()) - set(free.state_dict()) == {"enc_p.mrte.position_scale"}
    codes, phones = torch.randint(0, 1024, (40,)), torch.randint(0, 300, (16,))
    assert attention_figures(prior.text_alignment(codes, phones))["order"] > 0.9  # a soft diagonal from the start
    assert abs(attention_figures(free.text_alignment(codes, phones))["order"]) < 0.5

    # the prior follows each clip's own lengths: a clip padded in a batch attends as it does alone
    mrte = prior.enc_p.mrte
    content_mask = torch.ones(2, 1, 30)
    content_mask[1, :, 20:] = 0
    text_mask = torch.ones(2, 1, 12)
    text_mask[1, :, 9:] = 0
    hidden = prior.config.hidden_channels
    content, text = torch.randn(2, hidden, 30), torch.randn(2, hidden, 12)
    batched = mrte.text_attention(content, content_mask, text, text_mask)[1, :20, :9]
    alone = mrte.text_attention(content[1:, :, :20], content_mask[1:, :, :20], text[1:, :, :9], text_mask[1:, :, :9])[0]
    torch.testing.assert_close(batched, alone)
