"""What --emotion-strength does to the GPT's next-token distribution, and what mixing costs.

    python benchmarks/emotion_strength.py [--tokens 60] [--strengths 0,0.25,0.5,0.75,1,1.25,1.5] [--layers 24]
    python benchmarks/emotion_strength.py --model-dir pretrained_models --ref calm.wav --ref-text "..." \\
        --emotion-ref angry.wav --emotion-ref-text "..." --lang en --text "..."

For each strength s the two prompts (timbre clip, emotion clip) are decoded in step
(myna.engine.emotion_decode) and every step's three distributions are compared: p_timbre and
p_emotion (each prompt's repetition-penalised softmax) and their mixture p_s. Printed per s: the
mean KL(p_s || p_timbre) and KL(p_s || p_emotion) in nats, how often p_s's most likely token is
p_timbre's and p_emotion's, and tokens/s; then tokens/s of one prompt alone (what s = 0 and s = 1
cost). Without model files the GPT is full-size v2 with random weights and random prompt tokens:
only the mechanics (monotone distances, the cost) mean anything there, since random weights give
near-flat distributions. With `--model-dir` and two clips the prompts are real.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from fullsize import FULL_GPT  # benchmarks/ is on sys.path when this file runs

from myna.engine import emotion_decode
from myna.engine.t2s_decode import SamplingParams, iter_semantic_tokens, penalize_repeats, seeded_generator


def random_rows(layers: int, seed: int = 0):
    """A full-size-width random GPT (EOS never wins) and two random prompts over the same target phonemes."""
    from myna.models.t2s import T2SConfig, T2SModel

    torch.manual_seed(seed)
    gpt = T2SModel(T2SConfig.from_dict({"data": {"max_sec": 54}, "model": {**FULL_GPT, "n_layer": layers}})).eval()
    with torch.no_grad():
        gpt.ar_predict_layer.weight[FULL_GPT["EOS"]].zero_()
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 732, (40,), generator=gen)
    rows = []
    for prompt_len, token_len in ((30, 120), (24, 100)):  # timbre, emotion
        phones = torch.cat([torch.randint(0, 732, (prompt_len,), generator=gen), target])[None]
        rows.append((phones, torch.zeros(1, 1024, phones.shape[1]), torch.randint(0, 1024, (1, token_len), generator=gen)))
    return gpt, rows


def real_rows(args):
    """The GPT of a model directory and the two clips' prompts over `--text`."""
    from myna.engine.loading import ModelPaths, load_synthesizer
    from myna.engine.synthesizer import _gpt_text
    from myna.engine.textprep import text_fragment

    synth = load_synthesizer(ModelPaths.from_model_dir(args.model_dir, args.model_version), precision="fp32")
    fragment = text_fragment(args.text, args.lang, synth.version, synth.bert)
    rows = []
    for clip, text in ((args.ref, args.ref_text), (args.emotion_ref, args.emotion_ref_text)):
        voice = synth.voice(Path(clip), text, args.ref_lang or args.lang)
        rows.append((*_gpt_text(voice.prompt, fragment), voice.semantic))
    return synth.gpt, rows


def kl(p: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p || q) in nats for (V,) distributions (rounding below zero reads as 0)."""
    return max(0.0, float(torch.sum(p * (torch.log(p.clamp_min(1e-30)) - torch.log(q.clamp_min(1e-30))))))


def measure(gpt, rows, strength: float, tokens: int, params: SamplingParams) -> dict[str, float]:
    """Decode `tokens` mixed tokens at `strength`; the mean distances and agreements over the steps, tokens/s."""
    steps: list[tuple[float, float, bool, bool]] = []
    real_sample = emotion_decode.MixedSampler.sample

    def recording(self, logits):
        cut = logits[:, :-1] if self.step < emotion_decode.MIN_STEPS else logits
        penalized = penalize_repeats(cut, self.seen, self.params.repetition_penalty)
        p_timbre, p_emotion = torch.softmax(penalized, -1)
        p_mix = torch.softmax(emotion_decode.mix_logits(penalized, self.strength)[0], -1)
        best = int(torch.argmax(p_mix))
        steps.append((kl(p_mix, p_timbre), kl(p_mix, p_emotion), best == int(torch.argmax(p_timbre)),
                      best == int(torch.argmax(p_emotion))))
        return real_sample(self, logits)

    emotion_decode.MixedSampler.sample = recording
    try:
        start = time.perf_counter()
        count = sum(1 for _ in emotion_decode.iter_mixed_tokens(gpt, rows[0], rows[1], strength, params,
                                                               seeded_generator(0), tokens))
        seconds = time.perf_counter() - start
    finally:
        emotion_decode.MixedSampler.sample = real_sample
    n = max(len(steps), 1)
    return {"kl_timbre": sum(s[0] for s in steps) / n, "kl_emotion": sum(s[1] for s in steps) / n,
            "top1_timbre": sum(s[2] for s in steps) / n, "top1_emotion": sum(s[3] for s in steps) / n,
            "tok_s": count / seconds if seconds else 0.0}


def main() -> None:
    """Print one row per strength, then the single-prompt speed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--strengths", default="0,0.25,0.5,0.75,1,1.25,1.5")
    parser.add_argument("--layers", type=int, default=24, help="GPT layers of the random model (24 = full size)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model-dir")
    parser.add_argument("--model-version", default="v2")
    parser.add_argument("--ref")
    parser.add_argument("--ref-text")
    parser.add_argument("--emotion-ref")
    parser.add_argument("--emotion-ref-text")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--ref-lang")
    parser.add_argument("--text", default="The quick brown fox jumps over the lazy dog and runs into the forest.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gpt, rows = real_rows(args) if args.model_dir else random_rows(args.layers)
    params = SamplingParams()
    print(f"{'strength':>8}{'KL(mix|timbre)':>16}{'KL(mix|emotion)':>17}{'top1=timbre':>13}{'top1=emotion':>14}"
          f"{'tok/s':>8}")
    for strength in (float(s) for s in args.strengths.split(",")):
        row = measure(gpt, rows, strength, args.tokens, params)
        print(f"{strength:>8.2f}{row['kl_timbre']:>16.4f}{row['kl_emotion']:>17.4f}{row['top1_timbre']:>13.3f}"
              f"{row['top1_emotion']:>14.3f}{row['tok_s']:>8.1f}")
    start = time.perf_counter()
    count = sum(1 for _ in iter_semantic_tokens(gpt, *rows[0], params, seeded_generator(0), args.tokens))
    print(f"\none prompt alone (strength 0 or 1): {count / (time.perf_counter() - start):.1f} tok/s "
          f"({'model files' if args.model_dir else f'random weights, {args.layers} layers'}, "
          f"{args.threads} threads, fp32 module path)")


if __name__ == "__main__":
    main()
