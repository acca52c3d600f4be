"""A complete tiny GPT-SoVITS v2 model set and reference clips, rebuilt bit-for-bit from fixed seeds.

Files are written in upstream's layouts (GPT `.ckpt`, SoVITS `.pth`, transformers HuBERT and BERT
directories). Only torch, transformers and the standard library are used, and the model shapes come
in as arguments, so the same recipe runs in upstream GPT-SoVITS's environment (with upstream's classes
supplying the shapes): that is how data/engine_upstream.json was produced.
"""

from __future__ import annotations

import importlib.util
import math
import struct
import wave
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

_HERE = Path(__file__).resolve().parent


def _fixtures(name: str):
    spec = importlib.util.spec_from_file_location(name, _HERE.parent / "models" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


t2s_fixtures = _fixtures("t2s_fixtures")
sovits_fixtures = _fixtures("sovits_fixtures")

GPT_CONFIG = {"data": {"max_sec": 4}, "model": dict(t2s_fixtures.TINY_MODEL)}
SOVITS_HPS = {
    "train": {"segment_size": 20480},
    "data": {"max_wav_value": 32768.0, "sampling_rate": 32000, "filter_length": 2048, "hop_length": 640,
             "win_length": 2048, "n_mel_channels": 128, "mel_fmin": 0.0, "mel_fmax": None, "add_blank": True,
             "n_speakers": 300, "cleaned_text": True},
    "model": {"inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
              "kernel_size": 3, "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
              "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_rates": [10, 8, 2, 2, 2],
              "upsample_initial_channel": 512, "upsample_kernel_sizes": [16, 16, 8, 2, 2], "n_layers_q": 3,
              "use_spectral_norm": False, "gin_channels": 512, "semantic_frame_rate": "25hz",
              "freeze_quantizer": True, **sovits_fixtures.TINY_OVERRIDES, "version": "v2"},
    "version": "v2",
}
HUBERT = dict(hidden_size=768, num_hidden_layers=2, num_attention_heads=8, intermediate_size=96,
              conv_dim=(24,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=8)
BERT = dict(hidden_size=1024, num_hidden_layers=3, num_attention_heads=8, intermediate_size=96,
            max_position_embeddings=256, type_vocab_size=2, pad_token_id=0)
# A small vocabulary: specials, ASCII, CJK punctuation and the characters the test sentences use.
CJK = "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持音参片音乐天气今很好我们去公园吧这段参考频"  # noqa: E501
REFERENCE_SECONDS = (4.2, 3.4)
SEED = 20261123


def _seeded_weights(shapes: Mapping[str, Sequence[int]], seed: int) -> dict[str, torch.Tensor]:
    """Per-key random weights in sorted key order: norms near 1, small biases, fan-in scaled matrices."""
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        noise = torch.randn(shape, generator=gen) if shape else torch.randn((), generator=gen)
        name = key.rsplit(".", 1)[-1]
        if "norm" in key.lower() and name == "weight":
            value = 1.0 + 0.1 * noise
        elif name == "bias" or len(shape) < 2:
            value = 0.1 * noise
        else:
            value = noise / math.sqrt(math.prod(shape[1:]))
        weights[key] = value
    return weights


def write_model_set(out: Path, gpt_shapes: Mapping, sovits_shapes: Mapping) -> dict[str, Path]:
    """gpt.ckpt, sovits.pth, hubert/ and bert/ in `out`; shapes come from the caller's model classes."""
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        BertTokenizerFast,
        HubertConfig,
        HubertModel,
        Wav2Vec2FeatureExtractor,
    )

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gpt = {f"model.{k}": v.half() for k, v in t2s_fixtures.tiny_weights(gpt_shapes).items()}
    torch.save({"weight": gpt, "config": GPT_CONFIG, "info": "tiny"}, out / "gpt.ckpt")
    sovits = {k: v.half() for k, v in sovits_fixtures.tiny_weights(sovits_shapes).items()}
    torch.save({"weight": sovits, "config": SOVITS_HPS, "info": "tiny"}, out / "sovits.pth")

    hubert = HubertModel(HubertConfig(**HUBERT)).eval()
    hubert.load_state_dict(_seeded_weights({k: v.shape for k, v in hubert.state_dict().items()}, SEED))
    hubert.save_pretrained(out / "hubert")
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(out / "hubert")  # upstream loads it

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [chr(c) for c in range(33, 127) if not chr(c).isupper()] + list("，。！？…、；：“”（）《》")
    vocab += sorted(set(CJK) - set(vocab))
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True,
                                  tokenize_chinese_chars=True, strip_accents=None)
    tokenizer.save_pretrained(out / "bert")
    (out / "bert" / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    bert = BertForMaskedLM(BertConfig(vocab_size=len(vocab), **BERT)).eval()
    bert.load_state_dict(_seeded_weights({k: v.shape for k, v in bert.state_dict().items()}, SEED + 1), strict=False)
    bert.save_pretrained(out / "bert")
    return {"gpt": out / "gpt.ckpt", "sovits": out / "sovits.pth", "hubert": out / "hubert", "bert": out / "bert"}


def write_reference_clip(path: Path, seconds: float, seed: int, rate: int = 32000) -> Path:
    """A voiced-sounding deterministic clip (harmonics with vibrato + noise), 16-bit PCM WAV."""
    gen = torch.Generator().manual_seed(seed)
    n = int(rate * seconds)
    t = torch.arange(n, dtype=torch.float64) / rate
    f0 = 140 + 30 * torch.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / rate
    signal = sum(0.25 / k * torch.sin(k * phase) for k in range(1, 8))
    envelope = 0.6 + 0.4 * torch.sin(2 * math.pi * 2.5 * t).abs()
    signal = signal * envelope + 0.01 * torch.randn(n, generator=gen, dtype=torch.float64)
    pcm = (signal.clamp(-1, 1) * 32767).round().to(torch.int16).tolist()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{n}h", *pcm))
    return path
