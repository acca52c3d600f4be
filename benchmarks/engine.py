"""Engine speed on full-size GPT-SoVITS v2 shapes with random weights (no model files needed).

    python benchmarks/engine.py [--tokens 150] [--threads 2] [--repeats 3]

Prints T2S tokens/s (fixed token count, EOS suppressed), SoVITS decode real-time factor, end-to-end
real-time factor (English text front-end + T2S + SoVITS, reference prompt cached) and peak RSS.
Random weights say nothing about quality; shapes and operations are those of upstream's released v2
models (s1longer-v2.yaml, s2.json), so the timings are.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from myna.engine.t2s_decode import SamplingParams, generate_semantic
from myna.models.sovits import SoVITS, SoVITSConfig
from myna.models.t2s import T2SConfig, T2SModel
from myna.text import g2p_mixed

FULL_GPT = {"vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 512, "hidden_dim": 512, "head": 16,
            "linear_units": 2048, "n_layer": 24, "dropout": 0, "EOS": 1024}
TOKENS_PER_SECOND = 25  # semantic tokens per second of audio
TEXT = "The quick brown fox jumps over the lazy dog, and then it runs far away into the quiet forest."
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


def best_of(repeats: int, fn) -> tuple[float, object]:
    """Fastest wall time of `repeats` runs of fn(), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    """Run the benchmark and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=150, help="semantic tokens to generate (25 per second)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gpt, sovits = build_models()
    gen = torch.Generator().manual_seed(0)

    prompt_tokens = torch.randint(0, 1024, (1, 5 * TOKENS_PER_SECOND), generator=gen)
    spec = torch.rand(1, 1025, 5 * 50, generator=gen)
    prompt = g2p_mixed(PROMPT_TEXT, "en")
    target = g2p_mixed(TEXT, "en")
    phones = torch.tensor([prompt.ids + target.ids])
    bert = torch.zeros(1, 1024, phones.shape[1])
    params = SamplingParams(top_k=15)

    def t2s() -> torch.Tensor:
        return generate_semantic(gpt, phones, bert, prompt_tokens, params, torch.Generator().manual_seed(1),
                                 early_stop_num=args.tokens)

    t2s_time, tokens = best_of(args.repeats, t2s)
    assert tokens.numel() == args.tokens, f"expected {args.tokens} tokens, got {tokens.numel()}"
    audio_seconds = args.tokens / TOKENS_PER_SECOND
    target_ids = torch.tensor([target.ids])

    def vits() -> torch.Tensor:
        return sovits.decode(tokens, target_ids, [spec], noise_scale=0.5, generator=torch.Generator().manual_seed(2))

    vits_time, wave = best_of(args.repeats, vits)

    def end_to_end() -> torch.Tensor:
        text = g2p_mixed(TEXT, "en")
        ids = torch.tensor([prompt.ids + text.ids])
        semantic = generate_semantic(gpt, ids, torch.zeros(1, 1024, ids.shape[1]), prompt_tokens, params,
                                     torch.Generator().manual_seed(1), early_stop_num=args.tokens)
        return sovits.decode(semantic, torch.tensor([text.ids]), [spec], generator=torch.Generator().manual_seed(2))

    e2e_time, _ = best_of(args.repeats, end_to_end)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"threads                 {args.threads}")
    print(f"tokens                  {args.tokens} ({audio_seconds:.1f} s of audio, {wave.shape[-1]} samples)")
    print(f"t2s_tokens_per_s        {args.tokens / t2s_time:.1f}")
    print(f"sovits_rtf              {vits_time / audio_seconds:.3f}")
    print(f"end_to_end_rtf          {e2e_time / audio_seconds:.3f}")
    print(f"peak_rss_mb             {peak_mb:.0f}")


if __name__ == "__main__":
    main()
