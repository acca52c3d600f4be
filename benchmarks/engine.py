"""Engine speed and quality on full-size GPT-SoVITS v2 shapes with random weights (no model files needed).

    python benchmarks/engine.py [--tokens 150] [--threads 2] [--repeats 3] [--modes fp32,bf16,int8]
                                [--quality-steps 300] [--seeds 3] [--compile] [--eager-step] [--unfused]
                                [--no-streaming] [--cold-start [--models DIR] [--cold-runs 5]]

One row per GPT precision mode (myna.engine.precision), each measured in its own process (so peak
RSS is that mode's): T2S tokens/s (fixed token count, EOS suppressed), SoVITS decode real-time
factor, end-to-end real-time factor (English text front-end + T2S + SoVITS, reference prompt
cached) and the same with a Chinese sentence through a full-size random BERT, streamed
first-audio latency for a 15-word sentence, peak RSS, and the quality cost against fp32:
teacher-forced top-1 agreement (same prefix, argmax compared per step), free-running token
agreement (same seed), and SNR / max abs difference of the audio decoded from the free-running
tokens. Random weights make logits nearly flat, so free-running agreement (and the audio SNR that
follows from it) is a pessimistic bound: one flipped near-tie changes every later token.
SoVITS modes and streaming figures come from benchmarks/engine_stream.py when it is present.
The GPT decodes with the engine's flattened CPU decode step (myna.engine.precision.FlatDecodeStep),
whose fast modes attend with the C kernel of myna.engine.cpu_kernels; `--unfused` adds a row per
fast mode with torch's attention instead, `--eager-step` a row per mode with the module path (same
numbers, more Python per step). `--cold-start` adds the cold-start table of benchmarks/cold_start.py:
`myna say` and `myna serve` from process start on full-size files, per phase, in fresh processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from fullsize import PROMPT_TEXT, TOKENS_PER_SECOND, build_models  # benchmarks/ is on sys.path when run

from myna.engine.t2s_decode import SamplingParams, generate_semantic
from myna.models.t2s import T2SModel
from myna.text import g2p_mixed

TEXT = "The quick brown fox jumps over the lazy dog, and then it runs far away into the quiet forest."
TEXT_ZH = "今天天气很好，我们一起去公园散步，然后在湖边的小店里喝一杯热茶。"


def best_of(repeats: int, fn) -> tuple[float, object]:
    """Fastest wall time of `repeats` runs of fn(), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """Signal-to-noise ratio of `other` against `reference` in dB (inf when equal)."""
    n = min(len(reference), len(other))
    noise = float(np.sum((reference[:n] - other[:n]) ** 2)) + float(np.sum(reference[n:] ** 2) + np.sum(other[n:] ** 2))
    signal = float(np.sum(reference**2))
    return float("inf") if noise == 0 else 10 * np.log10(max(signal, 1e-30) / noise)


def gpt_inputs(seed: int = 0, text: str = TEXT) -> dict[str, torch.Tensor]:
    """Prompt tokens, reference spectrogram, phonemes (prompt + text) and zero BERT features."""
    gen = torch.Generator().manual_seed(seed)
    prompt_tokens = torch.randint(0, 1024, (1, 5 * TOKENS_PER_SECOND), generator=gen)
    spec = torch.rand(1, 1025, 5 * 50, generator=gen)
    prompt, target = g2p_mixed(PROMPT_TEXT, "en"), g2p_mixed(text, "en")
    phones = torch.tensor([prompt.ids + target.ids])
    return {"prompt": prompt_tokens, "spec": spec, "phones": phones, "target": torch.tensor([target.ids]),
            "bert": torch.zeros(1, 1024, phones.shape[1])}


@torch.inference_mode()
def teacher_forced_argmax(gpt: T2SModel, inputs: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """Argmax of the logits at every step when the GPT is fed `tokens` (N,): (N,) long."""
    prefix = inputs["phones"].shape[1] + inputs["prompt"].shape[1]
    gpt.setup_cache(1, prefix + tokens.numel())
    logits = gpt.prefill(inputs["phones"], inputs["bert"], inputs["prompt"])
    best = [int(logits[0].float().argmax())]
    for step in range(tokens.numel() - 1):
        position = torch.tensor([step])
        logits = gpt.decode_step(tokens[step].view(1, 1), position + prefix, position + inputs["prompt"].shape[1],
                                 attend_len=prefix + step + 1)
        best.append(int(logits[0].float().argmax()))
    return torch.tensor(best)


def _sovits_hooks(mode: str | None):
    """(prepare_sovits or None when `mode` is None, first_audio_latency) for the SoVITS side."""
    from engine_stream import first_audio_latency  # benchmarks/ is on sys.path when this file runs

    from myna.engine.sovits_fast import prepare_sovits

    return (prepare_sovits if mode else None), first_audio_latency


def zh_bert(text: str):
    """A ChineseBert around a full-size random chinese-roberta-wwm-ext-large (no files needed)."""
    from tokenizers.implementations import BertWordPieceTokenizer

    from myna.features.bert import ChineseBert
    from myna.features.bert_model import BertConfig, BertEncoder

    folder = Path(tempfile.mkdtemp(prefix="myna-bench-bert-"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(text) | set("，。！？、,.!?"))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertWordPieceTokenizer(str(folder / "vocab.txt"))._tokenizer
    config = BertConfig(vocab_size=21128, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                        intermediate_size=4096)
    return ChineseBert.from_parts(tokenizer, BertEncoder(config))


def run_mode(args: argparse.Namespace) -> dict[str, object]:
    """Every figure for one GPT precision mode (run in a child process)."""
    from myna.engine.precision import prepare_gpt

    torch.set_num_threads(args.threads)
    gpt, sovits = build_models()
    inputs = gpt_inputs()
    params = SamplingParams(top_k=15)
    reference = torch.load(args.reference) if args.reference and Path(args.reference).exists() else None
    started = time.perf_counter()
    prepare_gpt(gpt, args.child)
    prepare_seconds = time.perf_counter() - started
    # SoVITS follows the GPT's mode as load_synthesizer does: exact for fp32, else sovits_fast.fast_cpu_mode()
    from myna.engine.sovits_fast import fast_cpu_mode

    sovits_mode = args.sovits_mode or ("exact" if args.child == "fp32" else fast_cpu_mode())
    prepare_sovits, first_audio_latency = _sovits_hooks(sovits_mode)
    if prepare_sovits is not None:
        prepare_sovits(sovits, sovits_mode)
    if args.step in ("flat", "unfused"):  # as load_synthesizer sets a CPU GPT up ("unfused": torch's attention)
        from myna.engine.precision import use_flat_decode

        use_flat_decode(gpt, fused_attention=args.step == "flat")
    if args.step == "compile":
        from myna.engine.precision import compile_decode_step

        started = time.perf_counter()
        compile_decode_step(gpt)
        generate_semantic(gpt, inputs["phones"], inputs["bert"], inputs["prompt"], params,
                          torch.Generator().manual_seed(1), early_stop_num=args.tokens)
        prepare_seconds += time.perf_counter() - started

    def t2s(seed: int = 1, count: int = args.tokens) -> torch.Tensor:
        return generate_semantic(gpt, inputs["phones"], inputs["bert"], inputs["prompt"], params,
                                 torch.Generator().manual_seed(seed), early_stop_num=count)

    t2s(count=8)  # warm-up
    t2s_time, tokens = best_of(args.repeats, t2s)
    audio_seconds = args.tokens / TOKENS_PER_SECOND

    def vits(semantic: torch.Tensor = tokens) -> np.ndarray:
        with torch.inference_mode():
            wave = sovits.decode(semantic, inputs["target"], [inputs["spec"]], noise_scale=0.5,
                                 generator=torch.Generator().manual_seed(2))
        return wave.reshape(-1).float().numpy()

    vits_time, _ = best_of(args.repeats, vits)

    def end_to_end(text: str = TEXT, lang: str = "en", bert_model=None) -> np.ndarray:
        prompt, target = g2p_mixed(PROMPT_TEXT, "en"), g2p_mixed(text, lang)
        ids = torch.tensor([prompt.ids + target.ids])
        features = torch.zeros(1, 1024, ids.shape[1])
        if bert_model is not None:
            features[0, :, len(prompt.ids):] = bert_model.features(target.norm_text, target.word2ph)
        semantic = generate_semantic(gpt, ids, features, inputs["prompt"], params, torch.Generator().manual_seed(1),
                                     early_stop_num=args.tokens)
        with torch.inference_mode():
            return sovits.decode(semantic, torch.tensor([target.ids]), [inputs["spec"]],
                                 generator=torch.Generator().manual_seed(2))

    e2e_time, _ = best_of(args.repeats, end_to_end)
    row: dict[str, object] = {
        "mode": args.child + ("" if args.step == "flat" else f"+{args.step}"), "prepare_s": prepare_seconds,
        "t2s_tok_s": args.tokens / t2s_time, "sovits_rtf": vits_time / audio_seconds,
        "e2e_rtf": e2e_time / audio_seconds,
    }
    if args.zh:
        bert_model = zh_bert(TEXT_ZH)
        zh_time, _ = best_of(args.repeats, lambda: end_to_end(TEXT_ZH, "zh", bert_model))
        row["e2e_zh_rtf"] = zh_time / audio_seconds
    if first_audio_latency is not None and args.streaming:
        row["first_audio_ms"] = 1000 * first_audio_latency(gpt, sovits, repeats=args.repeats)[0]
    # quality against fp32: teacher-forced top-1 agreement, free-running tokens, audio
    steps = args.quality_steps
    runs = {seed: t2s(seed + 10, steps) for seed in range(args.seeds)}
    fed = runs if reference is None else reference["runs"]  # teacher forcing always feeds fp32's tokens
    forced = {seed: teacher_forced_argmax(gpt, inputs, fed[seed]) for seed in runs}
    if reference is None:  # this is the fp32 run: its results are the reference
        reference = {"runs": runs, "forced": forced,
                     "audio": {s: torch.from_numpy(vits(runs[s][:args.tokens])) for s in runs}}
        torch.save(reference, args.reference)
    agree_forced = [float((forced[s] == reference["forced"][s]).float().mean()) for s in runs]
    agree_free, first_diff, snrs, diffs = [], [], [], []
    for s in runs:
        ours, ref = runs[s], reference["runs"][s]
        ref_audio = reference["audio"][s].numpy()
        n = min(len(ours), len(ref))
        same = (ours[:n] == ref[:n]).float()
        agree_free.append(float(same.mean()))
        first_diff.append(int(n if bool(same.all()) else int(torch.argmin(same))))
        audio = vits(ours[:args.tokens])
        snrs.append(snr_db(ref_audio, audio))
        m = min(len(audio), len(ref_audio))
        diffs.append(float(np.abs(audio[:m] - ref_audio[:m]).max()))
    row.update({"forced_agree": float(np.mean(agree_forced)), "free_agree": float(np.mean(agree_free)),
                "first_diff": int(min(first_diff)), "snr_db": float(np.min(snrs)), "max_abs": float(np.max(diffs)),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    return row


COLUMNS = [("mode", "{}"), ("t2s_tok_s", "{:.1f}"), ("sovits_rtf", "{:.3f}"), ("e2e_rtf", "{:.3f}"),
           ("e2e_zh_rtf", "{:.3f}"), ("first_audio_ms", "{:.0f}"), ("peak_rss_mb", "{:.0f}"),
           ("forced_agree", "{:.3f}"), ("free_agree", "{:.3f}"), ("first_diff", "{}"), ("snr_db", "{:.1f}"),
           ("max_abs", "{:.3g}"), ("prepare_s", "{:.1f}")]


def print_table(rows: list[dict[str, object]]) -> None:
    """One line per mode; '-' where a figure was not measured."""
    print("  ".join(f"{name:>14}" for name, _ in COLUMNS))
    for row in rows:
        cells = [fmt.format(row[name]) if name in row else "-" for name, fmt in COLUMNS]
        print("  ".join(f"{cell:>14}" for cell in cells))


def main() -> None:
    """Run one child process per mode and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=150, help="semantic tokens to generate (25 per second)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="fp32,bf16,int8", help="GPT precisions, fp32 first (the reference)")
    parser.add_argument("--sovits-mode", default=None, help="SoVITS mode of myna.engine.sovits_fast (default: as load_synthesizer, exact with fp32, "
                        "else bf16 on CPUs with native bf16, else nwc)")
    parser.add_argument("--quality-steps", type=int, default=300, help="steps per seed for token agreement")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also measure each mode with torch.compile")
    parser.add_argument("--eager-step", action="store_true",
                        help="also measure each mode with the module-path decode step (the engine's is flattened)")
    parser.add_argument("--unfused", action="store_true",
                        help="also measure each fast mode with torch's attention instead of the C kernel (myna.engine.cpu_kernels)")
    parser.add_argument("--step", default="flat", choices=("flat", "unfused", "eager", "compile"), help=argparse.SUPPRESS)
    parser.add_argument("--no-zh", dest="zh", action="store_false", help="skip the Chinese (BERT) end-to-end row")
    parser.add_argument("--no-streaming", dest="streaming", action="store_false", help="skip first-audio latency")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument("--cold-start", action="store_true",
                        help="then the cold-start table of benchmarks/cold_start.py (fresh processes, per phase)")
    parser.add_argument("--models", type=Path, help="--cold-start: folder with gpt.ckpt, sovits.pth, hubert/, bert/ "
                        "(default: a random full-size set written first)")
    parser.add_argument("--cold-runs", type=int, default=5, help="--cold-start: fresh-process rounds")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("ROW " + json.dumps(run_mode(args)), flush=True)
        return
    modes = [m for m in args.modes.split(",") if m]
    if modes[0] != "fp32":
        modes.insert(0, "fp32")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        reference = os.path.join(tmp, "fp32.pt")
        for mode in modes:
            steps = (["flat"] + (["unfused"] if args.unfused and mode != "fp32" else [])
                     + (["eager"] if args.eager_step else []) + (["compile"] if args.compile else []))
            for step in steps:
                child = [sys.executable, __file__, *sys.argv[1:], "--child", mode, "--reference", reference,
                         "--step", step]
                done = subprocess.run(child, capture_output=True, text=True)
                lines = [line for line in done.stdout.splitlines() if line.startswith("ROW ")]
                if done.returncode or not lines:
                    print(f"{mode}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(lines[-1][4:]))
    print(f"threads {args.threads}, {args.tokens} tokens ({args.tokens / TOKENS_PER_SECOND:.1f} s of audio), "
          f"best of {args.repeats}; quality: {args.seeds} seeds x {args.quality_steps} steps vs fp32")
    print_table(rows)
    if args.json:
        print(json.dumps(rows))
    if args.cold_start:
        import cold_start  # benchmarks/ is on sys.path when this file runs

        print()
        cold_start.main([*(["--models", str(args.models)] if args.models else []), "--runs", str(args.cold_runs),
                         "--threads", str(args.threads)])


if __name__ == "__main__":
    main()
