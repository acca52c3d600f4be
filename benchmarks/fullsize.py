"""Full-size GPT-SoVITS v2 models with random weights, shared by the engine benchmarks (no model files needed)."""

from __future__ import annotations

import torch

from myna.models.sovits import SoVITS, SoVITSConfig
from myna.models.t2s import T2SConfig, T2SModel

FULL_GPT = {"vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 512, "hidden_dim": 512, "head": 16,
            "linear_units": 2048, "n_layer": 24, "dropout": 0, "EOS": 1024}
TOKENS_PER_SECOND = 25  # semantic tokens per second of audio
PROMPT_TEXT = "This is the reference clip, about five seconds of clear speech."


def build_models(seed: int = 0) -> tuple[T2SModel, SoVITS]:
    """Full-size v2 GPT and SoVITS with random weights; the GPT never predicts EOS."""
    torch.manual_seed(seed)
    gpt = T2SModel(T2SConfig.from_dict({"data": {"max_sec": 54}, "model": FULL_GPT})).eval()
    with torch.no_grad():
        gpt.ar_predict_layer.weight[FULL_GPT["EOS"]].zero_()  # EOS logit 0: never in the top-k of 1025
    sovits = SoVITS(SoVITSConfig()).eval()
    with torch.no_grad():  # the VQ codebook starts at zeros in a fresh model; give it distinct codes
        codebook = sovits.quantizer.vq.layers[0]._codebook
        codebook.embed.normal_(0, 0.25)
    return gpt, sovits
