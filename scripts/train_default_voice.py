"""The recipe of the bundled default voice (myna/assets/default): the "small" preset, trained on a CPU.

    python scripts/train_default_voice.py corpus   --corpus DIR --work DIR [--jobs 2]
    python scripts/train_default_voice.py features --corpus DIR --work DIR
    python scripts/train_default_voice.py tokens   --corpus DIR --work DIR
    python scripts/train_default_voice.py sovits   --corpus DIR --work DIR [--max-steps N] [--minutes M] [--design D]
                                                   [--set NAME=VALUE ...]
    python scripts/train_default_voice.py fork     --corpus DIR --work NEW --from WORK [--design D] [--from-design D]
                                                   [--reinit PREFIX ...]
    python scripts/train_default_voice.py gpt      --corpus DIR --work DIR [--max-steps N] [--minutes M]
    python scripts/train_default_voice.py export   --corpus DIR --work DIR [--design D]
    python scripts/train_default_voice.py resynth  --corpus DIR --work DIR [--clips 30] [--design D]
    python scripts/train_default_voice.py reading  --corpus DIR --work DIR [--clips 30] [--design D]
    python scripts/train_default_voice.py heldout  --corpus DIR --work DIR
    python scripts/train_default_voice.py evaluate --corpus DIR --work DIR [--sentences 40] [--ref-free]
    python scripts/train_default_voice.py follow   --corpus DIR --work DIR [--clips 40]
    python scripts/train_default_voice.py snapshot --corpus DIR --work DIR [--snapshot-dir DIR]
    python scripts/train_default_voice.py bundle   --corpus DIR --work DIR [--out DIR] [--notice TEXT] [--ref-free] [--no-measure]
    python scripts/train_default_voice.py cycle    --corpus DIR --work DIR [--minutes 30] [--rounds N]

The corpus is a `myna data synth` folder (`myna data synth --utterances 300 --wide-utterances 800
--pseudo-speakers 16 --seed 0 --out OUT`; deterministic, never committed). The stages (myna.train.default_recipe;
the snapshot rule: myna.train.snapshot_rule):

- corpus: renders that corpus into --corpus (`--jobs` renderers; it resumes a partial one), then the features
  stage: all a fresh machine needs before training resumes from the committed snapshot (28,720 clips: ~1.5 h
  of rendering and ~1.3 h of features on a 2-core AVX2 machine, docs/default-voice-history.md).
- features: the feature caches of the training and of the held-out speakers (once).
- tokens: the semantic tokens' tokenizer, written into SoVITS's `ssl_proj` and codebook (frozen from
  then on). `--tokens` picks the design (each keeps its state in WORK/TOKENS):
  - kmeans1024 (default): 1024 k-means codes of the Whisper states of the two frames a 25 Hz token
    spans, in their 384 leading principal axes (myna.train.kmeans_tokens);
  - product16: phone x 16 acoustic sub-codes: a flat-start Viterbi alignment of the corpus to its
    phoneme strings, a linear phone classifier, 16 k-means centroids within each phone
    (myna.train.phonetic);
  - phone: the 55 phone classes alone.
  Chosen by a probe decoder (tokens + phonemes -> 16 kHz mel, Griffin-Lim, Whisper tiny.en on 30
  held-out clips of unseen speakers, one CPU thread), held-out WER:
      tokens        300 steps (2.3-2.8 CPU min)   600 steps (4.7 CPU min)
      continuous    0.313                         -
      kmeans1024    0.735                         0.532
      product16     0.893                         -
      phone         1.160                         1.092
  Product codes were meant to keep the GPT's task mostly durations, but the decoder's words come
  first (the issue's first bottleneck) and k-means codes keep more of them at every point measured.
  With a committed snapshot of the same design, its tokenizer is used, so the tokens never change
  between runs.
- sovits: SoVITS on those tokens (frozen), mel + KL losses, 2-s windows, an inference export every
  EXPORT_EVERY steps; `--design` picks one of the compared decoders (default: the preset's). `--set NAME=VALUE`
  overrides one of the recipe's training settings (SoVITSTrainConfig's fields, JSON values) for an experiment,
  kept in WORK's train_config.json for the run; those meant to make the decoder read its phonemes (it ignores
  them, docs/default-voice-history.md): `token_noise=0.25 token_noise_span=4` (runs of token frames replaced at
  random), `crop_phones=true` (a 2-s window keeps only its share of the phonemes), `mrte_guide=10` (a
  guided-attention loss on the text attention), `mrte_align=2` (the text attention told each frame's phoneme by a
  phone alignment of every ALIGN_STRIDE-th clip, WORK/alignment.pt, made once and shared with `follow`),
  `text_low_lr_rate=5` (the text side learns faster), `token_blank=0.25` (runs of token frames with no content at
  all, where only the phonemes say what is there).
- fork: a new work folder (--work) whose decoder of --design starts from the newest decoder state of another
  (--from, of --from-design): the experiments' way to branch a run without touching it. The corpus's features
  and alignment are linked, the tokenizer, CPU time and curve copied; weights of the same name and shape keep
  their optimizer moments, and new ones (the `istft16p` prior's) or those named by `--reinit PREFIX` (e.g.
  `enc_p.encoder_text.`: a text encoder that has forgotten its phonemes, docs/default-voice.md) start fresh.
- gpt: the GPT on the tokens; it can run while sovits trains (the tokens are fixed).
- export: inference files of both stages' newest training states, where not exported yet: a run stopped by
  Ctrl-C saves its state but exports nothing, and the measuring stages read the newest exports.
- resynth: held-out speakers' clips decoded from their own tokens, phonemes and timbre by the newest
  SoVITS export and transcribed by Whisper tiny.en: the ceiling the GPT can reach with this decoder.
- reading: whether that decoder reads its phonemes: the same clips decoded with the next clip's phonemes, and
  with 30% of their token frames replaced at random (with their own phonemes and the next clip's). The decoder
  of the eighth period did not (docs/default-voice-history.md); the `--set` experiments above are meant to change
  that. Beside each WER, the decoded audio's log-mel distance to the clip's recording (`reading_mel_*`): with
  replaced tokens, the own phonemes' distance below the other phonemes' is the text's share of the repair, seen long
  before 30 clips' WER can show it. It also says where the text attention looks (`reading_attention_*`) and
  whether the text encoder's states still tell their phonemes apart (`reading_text_identity`,
  myna.train.text_attention).
- evaluate: the newest exports of both stages as a default voice through benchmarks/voice_quality.py
  (held-out sentences, the bundled reference clip): the full pipeline's WER (`--ref-free`: the GPT
  unprompted); with it the GPT's teacher-forced loss and accuracy on the held-out speakers' clips,
  which turn up when more steps only memorize the corpus (at 3.6 h of corpus the small GPT's did from
  step ~2,500: 3.67 -> 4.11 by step 3,750, while its training loss fell 1.03 -> 0.60).
- heldout: those teacher-forced figures of the newest GPT export alone (seconds, and no alignment): what
  the snapshot rule needs for a GPT-only snapshot.
- follow: whether the GPT reads, without the decoder: the tokens it generates for held-out and training
  texts (unprompted, and prompted by the reference clip) are aligned to their text's phones and to another
  text's, under what each code says of the phone spoken (counted over a phone alignment of the corpus:
  WORK/alignment.pt, made once); the margin is ~0 when the tokens do not follow the text, and the clips'
  own tokens give its ceiling. A WER near 1.0 cannot tell a GPT that starts to read from one that does not.
  The held-out teacher-forced loss and accuracy (as in evaluate) are recorded with the margins.
- snapshot: the snapshot rule: the best measured point (lowest resynthesis WER over all 120 held-out
  clips, `resynth --clips 120`, whose SoVITS training state is kept) goes into the committed snapshot
  folder only when it beats the committed snapshot's WER by MIN_WER_GAIN, 0.02 (a first snapshot: WER <=
  FIRST_SNAPSHOT_WER, 0.9; `--force` overrides). Written: SoVITS at that point and the newest GPT if one
  trained (int8/fp16, no optimizer state), the token design, and the committed curve extended by WORK's
  points (myna.train.snapshot). Otherwise the GPT alone, at its kept point of lowest held-out
  teacher-forced loss (measured by heldout, follow or evaluate), when that beats the committed GPT's by
  MIN_LOSS_GAIN, 0.05, so that its progress survives while the decoder's WER stalls; else the stage
  refuses. Training resumes from WORK's state, else from that snapshot (a fresh optimizer with a short
  warm-up), else from scratch.
- bundle: the default-voice folder from the newest exports and a reference clip, with its MODEL_CARD.md
  (myna.train.model_card): sources, recipe, curve, and the figures of benchmarks/voice_quality.py
  measured on the bundle (`--sentences` held-out sentences, 4 seen and 4 unseen voices for similarity;
  `--no-measure` writes the card without them).
- cycle: one thread's worth of everything, for a machine left to train: rounds of `--minutes` CPU
  minutes of sovits, resynth, the same of gpt, evaluate (10 sentences), until `--rounds` are done;
  `--sovits-only` skips gpt and evaluate (while the decoder is not yet intelligible, the GPT's
  figures say nothing).

resynth, reading, heldout, follow and evaluate append their figures to WORK/TOKENS/curve.json (with the steps and
CPU time so far).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from myna.train.default_recipe import DEFAULT_TOKENS, DESIGNS, PRESET, TOKEN_DESIGNS, Recipe, parse_settings
from myna.train.snapshot_rule import take_snapshot

REPO = Path(__file__).resolve().parents[1]


def _voice_quality():
    """benchmarks/voice_quality.py as a module (its WER helpers and benchmark)."""
    spec = importlib.util.spec_from_file_location("voice_quality", REPO / "benchmarks" / "voice_quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["voice_quality"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _point(recipe: Recipe, **figures) -> dict:
    """A curve point: the steps of both stages' newest exports (a stage not exported here: the committed snapshot's
    step, which training resumed from), CPU hours so far, and `figures`."""
    point = {"design": recipe.design, "tokens": recipe.tokens}
    for stage in ("sovits", "gpt"):
        try:
            point[f"{stage}_step"] = recipe.latest(stage)[1]
        except SystemExit:
            point[f"{stage}_step"] = recipe.snapshot().step(stage)
    point["cpu_hours"] = round(sum(v for k, v in recipe.progress().items() if k.endswith("cpu_seconds")) / 3600, 3)
    return point | figures


def _spread(items: list, count: int, start: int = 0) -> list:
    """`count` of `items`, evenly spaced from `start` (the same ones every run)."""
    return items[start :: max(1, len(items) // count)][:count]


def _heldout_decoding(recipe: Recipe, clips: int):
    """The newest SoVITS export, its step, and `clips` held-out clips as decoder items, with a function that
    decodes an item (from its own tokens, or from `codes` in their place) and one that transcribes the audio with
    Whisper tiny.en."""
    from myna.audio.io import resample_soxr
    from myna.engine.loading import load_sovits
    from myna.features.asr import Transcriber
    from myna.train.dataset import FeatureCache
    from myna.train.sovits_trainer import render_item
    from myna.train.stages import sovits_items

    path, step = recipe.latest("sovits")
    model = load_sovits(path).eval()
    rate = model.config.sampling_rate
    recipe.features()
    cache = FeatureCache.open(recipe.work / "heldout_features")
    utterances = _spread(cache.items, clips)
    items = sovits_items(FeatureCache(cache.root, cache.version, cache.symbols, cache.models, utterances), rate)
    asr = Transcriber()

    def render(item, codes: torch.Tensor | None = None) -> np.ndarray:
        return render_item(model, item, torch.device("cpu"), codes)

    def hear(audio: np.ndarray) -> str:
        return asr.transcribe(resample_soxr(audio, rate, 16000), "en")[0]

    return model, step, items, render, hear


def resynthesis_wer(recipe: Recipe, clips: int) -> float:
    """WER of held-out speakers' clips decoded from their own tokens by the newest SoVITS export."""
    import jiwer

    vq = _voice_quality()
    _, step, items, render, hear = _heldout_decoding(recipe, clips)
    texts, heard = [], []
    for utt, item in zip(items.utterances, items, strict=True):
        texts.append(utt.record["text"])
        heard.append(hear(render(item)))
    for text, got in list(zip(texts, heard, strict=True))[:3]:
        print(f"  {text!r} -> {got!r}")
    wer = vq.word_error_rate(texts, heard)
    words = jiwer.process_words([vq.normalize_words(t) for t in texts], [vq.normalize_words(h) or "-" for h in heard])
    share = words.hits / (words.hits + words.substitutions + words.deletions)
    print(f"SoVITS {recipe.design} step {step}: resynthesis WER {wer:.3f} over {len(texts)} held-out clips, "
          f"{share:.1%} of the words heard")
    recipe.add_point(_point(recipe, resynth_wer=round(wer, 4), resynth_clips=len(texts)))
    return wer


def phoneme_reading(recipe: Recipe, clips: int, share: float = 0.3) -> dict[str, float]:
    """Whether the newest SoVITS export reads its phonemes: held-out clips decoded from their own tokens with their
    own phonemes and with the next clip's, then with `share` of their token frames replaced at random (with both
    phonemes again). A decoder that reads its phonemes says the other clip's words with the other's phonemes and
    keeps its words through the replaced tokens; one that does not (docs/default-voice-history.md, eighth period) says
    the same words whatever phonemes it gets, and loses them with the tokens. Beside each WER, `reading_mel_*`: the
    log-mel L1 distance of the decoded audio to the clip's own recording (the training loss's measure, whole clips),
    which moves far less from clip to clip than a WER over a few clips: with replaced tokens, the own phonemes'
    distance below the other phonemes' says that the text restores what the tokens lost."""
    from myna.audio.mel import mel_filterbank, wave_log_mel
    from myna.models.sovits import replace_codes_at_random

    vq = _voice_quality()
    model, step, items, render, hear = _heldout_decoding(recipe, clips)
    c, settings = model.config, recipe.sovits_settings()
    filterbank = mel_filterbank(c.sampling_rate, c.filter_length, settings.n_mel_channels, settings.mel_fmin,
                                settings.mel_fmax)

    def log_mel(wave) -> torch.Tensor:
        return wave_log_mel(torch.as_tensor(wave, dtype=torch.float32)[None], filterbank, c.filter_length,
                            c.hop_length, c.win_length)[0]

    def mel_distance(audio: np.ndarray, recording: torch.Tensor) -> float:
        ours = log_mel(audio)
        frames = min(ours.shape[-1], recording.shape[-1])
        return float((ours[:, :frames] - recording[:, :frames]).abs().mean())

    data = [items[i] for i in range(len(items))]
    recordings = [log_mel(item["wav"]) for item in data]  # each clip's own, once
    texts = [utt.record["text"] for utt in items.utterances]
    others = texts[1:] + texts[:1]
    heard: dict[str, list[str]] = {}
    distances: dict[str, list[float]] = {}
    for noised in (False, True):
        for i, item in enumerate(data):
            codes = None
            if noised:  # the same draw for a clip every run: seeded by its length
                with torch.no_grad():
                    codes = replace_codes_at_random(model.extract_latent(item["ssl"].float().unsqueeze(0)), share,
                                                    model.quantizer.bins,
                                                    torch.Generator().manual_seed(int(item["ssl"].shape[-1])))
            swapped = dict(item, phones=data[(i + 1) % len(data)]["phones"])
            tokens = f"{'noised' if noised else 'own'}_tokens"
            for key, decoded in ((tokens, item), (f"{tokens}_other_phones", swapped)):
                audio = render(decoded, codes)
                heard.setdefault(key, []).append(hear(audio))
                distances.setdefault(key, []).append(mel_distance(audio, recordings[i]))
    figures = {f"reading_{key}": round(vq.word_error_rate(texts, said), 4) for key, said in heard.items()}
    figures |= {f"reading_mel_{key}": round(sum(values) / len(values), 4) for key, values in distances.items()}
    other_words = vq.word_error_rate(others, heard["own_tokens_other_phones"])
    figures["reading_other_phones_vs_their_text"] = round(other_words, 4)
    figures |= text_attention_figures(model, data)
    print(f"SoVITS {recipe.design} step {step}, WER over {len(texts)} held-out clips ({share:.0%} of the tokens "
          "noised): " + ", ".join(f"{key.removeprefix('reading_')} {value:.3f}" for key, value in figures.items()))
    figures |= {"reading_noise": share, "reading_clips": len(texts)}
    recipe.add_point(_point(recipe, **figures))
    return figures


def text_attention_figures(model, items: list[dict]) -> dict[str, float]:
    """Where the decoder's text attention (MRTE, content frames to phonemes) looks, averaged over `items`: its
    guided-attention loss, peak and order (myna.train.text_attention.attention_figures), and how well the text
    encoder's states still tell their phonemes apart (`phoneme_identity`)."""
    from myna.train.text_attention import attention_figures, phoneme_identity

    figures, states, phone_ids = [], [], []
    for item in items:
        phones = item["phones"].long()
        with torch.no_grad():
            weights = model.text_alignment(model.extract_latent(item["ssl"].float().unsqueeze(0))[0, 0], phones)
            states.append(model.enc_p.encode_text(phones[None], torch.tensor([phones.shape[0]]))[0][0].T)
        figures.append(attention_figures(weights))
        phone_ids.append(phones)
    averaged = {f"reading_attention_{name}": round(sum(f[name] for f in figures) / len(figures), 4)
                for name in ("guide", "peak", "order")}
    if len(items) > 1:
        averaged["reading_text_identity"] = round(phoneme_identity(states, phone_ids), 4)
    return averaged


def gpt_heldout(recipe: Recipe) -> dict[str, float]:
    """Teacher-forced loss and top-1 accuracy of the newest GPT export on the held-out speakers' clips: the
    training loss keeps falling while the GPT memorizes its corpus; this one turns up when it does."""
    from myna.engine.loading import load_gpt
    from myna.train.gpt_trainer import teacher_forced_scores
    from myna.train.stages import gpt_items

    path, step = recipe.latest("gpt")
    items = gpt_items(recipe.heldout_token_cache(), PRESET.gpt.max_sec)
    loss, accuracy = teacher_forced_scores(load_gpt(path), [items[i] for i in range(len(items))])
    print(f"GPT step {step}: held-out teacher-forced loss {loss:.3f}, top-1 accuracy {accuracy:.3f} "
          f"over {len(items)} clips")
    return {"gpt_heldout_loss": round(loss, 4), "gpt_heldout_acc": round(accuracy, 4)}


def export_states(recipe: Recipe) -> None:
    """Exports of both stages' newest local training states not exported yet (a run stopped by Ctrl-C exports
    nothing), so that `resynth`, `heldout` and the others measure them."""
    for stage in ("sovits", "gpt"):
        kept = recipe.kept_steps(stage)
        if not kept:
            print(f"{stage}: no training state here")
            continue
        step = max(kept)
        try:
            if recipe.latest(stage)[1] == step:
                print(f"{stage}: step {step} is exported already")
                continue
        except SystemExit:
            pass  # no export yet
        print(f"{stage}: exported step {step} to {recipe.export_state(stage)}")


def text_following(recipe: Recipe, clips: int = 40) -> dict[str, float]:
    """Whether the newest GPT export reads its text, without the decoder: for `clips` held-out clips (and as many
    training clips), the tokens it generates (engine defaults, seed 0; unprompted, and prompted by the reference
    clip) are aligned to the text's phones and to another clip's (myna.train.phonetic.text_following). The
    clips' own tokens give the ceiling; about 0 means the tokens do not follow the text. Lengths are over the
    clips' own token counts: their median and how many clips end at <= 0.6 show a GPT that stops early. The
    held-out teacher-forced scores (`gpt_heldout`) come with them: they move far less between runs than a margin
    over 40 sampled clips."""
    import numpy as np

    from myna.engine.loading import load_gpt
    from myna.engine.t2s_decode import SamplingParams, generate_semantic
    from myna.models.t2s import BERT_DIM
    from myna.train.dataset import FeatureCache
    from myna.train.phonetic import code_phone_scores
    from myna.train.phonetic import text_following as margin

    path, step = recipe.latest("gpt")
    model = load_gpt(path).eval()
    train = recipe.token_cache()
    aligned = recipe.alignment()
    named = [u for u in train.items if u.name in aligned]
    scores = code_phone_scores([u.semantic().numpy() for u in named], [aligned[u.name] for u in named],
                               model.config.vocab_size)
    ref_audio = str(recipe.reference_clip()[0])
    prompt = next((u for u in train.items if u.record["audio"] == ref_audio), None)
    if prompt is None:
        raise SystemExit(f"the reference clip {ref_audio} is not in the training features")

    def generate(utt, prompted: bool) -> torch.Tensor:
        phones = torch.cat([prompt.phone_ids(), utt.phone_ids()]) if prompted else utt.phone_ids()
        return generate_semantic(model, phones.unsqueeze(0), torch.zeros(1, BERT_DIM, phones.shape[0]),
                                 prompt.semantic().unsqueeze(0) if prompted else None, SamplingParams(),
                                 torch.Generator().manual_seed(0), max_steps=3 * utt.semantic().shape[0] + 20)

    held = FeatureCache.open(recipe.work / "heldout_features").items
    rows: dict[str, list[tuple[float, float]]] = {}
    for group, items in (("heldout", _spread(held, clips)), ("train", _spread(train.items, clips, start=7))):
        for i, utt in enumerate(items):
            other = items[(i + 1) % len(items)].phone_ids().tolist()
            runs = {"true": utt.semantic(), "ref_free": generate(utt, False)}
            if group == "heldout":
                runs["prompted"] = generate(utt, True)
            for name, tokens in runs.items():
                rows.setdefault(f"{group}_{name}", []).append(
                    (margin(scores, tokens.tolist(), utt.phone_ids().tolist(), other),
                     len(tokens) / utt.semantic().shape[0]))
    figures = {}
    for key, values in rows.items():
        follows, lengths = zip(*values, strict=True)
        follow, length, median = float(np.mean(follows)), float(np.mean(lengths)), float(np.median(lengths))
        print(f"GPT step {step}, {key}: text-following margin {follow:.3f}, length ratio {length:.2f} "
              f"(median {median:.2f}, {sum(x <= 0.6 for x in lengths)} of {len(lengths)} clips at <= 0.6)")
        figures[f"follow_{key}"] = round(follow, 3)
        if not key.endswith("_true"):  # an early stop shows in the median length, not in the margin
            figures[f"follow_{key}_length"] = round(median, 2)
    figures |= gpt_heldout(recipe)
    recipe.add_point(_point(recipe, **figures))
    return figures


def evaluate(recipe: Recipe, sentences: int, ref_free: bool = False) -> float:
    """Full-pipeline WER (GPT tokens -> decoder) of the newest exports, as benchmarks/voice_quality.py measures it;
    `ref_free`: the GPT without the reference clip's prompt (the decoder still takes its timbre)."""
    vq = _voice_quality()
    with tempfile.TemporaryDirectory(prefix="myna-voice-") as tmp:
        recipe.bundle(Path(tmp), ref_free=ref_free)
        report = vq.run(Path(tmp), None, sentences, 0, 0)
    for said, heard in report.samples[:3]:
        print(f"  {said!r} -> {heard!r}")
    mode = "ref-free" if ref_free else "prompted"
    print(f"full pipeline ({mode}): WER {report.wer:.3f} over {report.sentences} held-out sentences, "
          f"RTF {report.rtf:.3f}")
    figures = {"wer": round(report.wer, 4), "sentences": report.sentences} | ({"ref_free": True} if ref_free else {})
    figures |= gpt_heldout(recipe)
    recipe.add_point(_point(recipe, **figures))
    return report.wer


def snapshot(recipe: Recipe, force: bool = False) -> None:
    """The snapshot rule (myna.train.snapshot_rule), and what it wrote."""
    manifest, figures = take_snapshot(recipe, force)
    print(json.dumps({"manifest": str(manifest)} | figures
                     | {"megabytes": round(recipe.snapshot().size_bytes() / 1e6, 1)}))


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run one stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("corpus", "features", "tokens", "sovits", "fork", "gpt", "export", "resynth",
                                          "reading", "heldout", "evaluate", "follow", "snapshot", "bundle", "cycle"))
    parser.add_argument("--corpus", type=Path, required=True, help="a `myna data synth` folder")
    parser.add_argument("--work", type=Path, required=True, help="training state (caches, checkpoints, exports)")
    parser.add_argument("--snapshot-dir", type=Path, default=REPO / "src/myna/assets/default/snapshot",
                        help="the committed snapshot to resume from and to write")
    parser.add_argument("--design", choices=tuple(DESIGNS), help="sovits, resynth, snapshot: the decoder design")
    parser.add_argument("--from", type=Path, dest="source", metavar="WORK",
                        help="fork: the work folder whose newest decoder state --work starts from")
    parser.add_argument("--from-design", choices=tuple(DESIGNS), help="fork: that state's design (default --design)")
    parser.add_argument("--reinit", action="append", default=[], metavar="PREFIX",
                        help="fork: decoder weights whose names start with PREFIX start fresh, e.g. "
                             "enc_p.encoder_text. (repeatable)")
    parser.add_argument("--tokens", choices=tuple(TOKEN_DESIGNS), default=DEFAULT_TOKENS,
                        help="the semantic token design (each keeps its state in WORK/TOKENS)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="corpus: parallel renderers (default 1)")
    parser.add_argument("--max-steps", type=int, default=1_000_000, help="sovits, gpt: stop at this step")
    parser.add_argument("--minutes", type=float, help="sovits, gpt: stop after this much CPU time in this run")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="settings",
                        help="sovits: override a training setting for an experiment (a SoVITSTrainConfig field and a "
                             "JSON value, e.g. token_noise=0.25 or crop_phones=true); repeatable")
    parser.add_argument("--clips", type=int,
                        help="resynth: held-out clips to transcribe (default 30); follow: held-out (and as many "
                             "training) clips to generate from (default 40: one sample a clip, 20 clips move by ~0.1)")
    parser.add_argument("--sentences", type=int, default=40, help="evaluate: held-out sentences")
    parser.add_argument("--out", type=Path, default=REPO / "src/myna/assets/default", help="bundle: the folder")
    parser.add_argument("--notice", help="bundle: a line `myna say` prints when it speaks with this voice")
    parser.add_argument("--ref-free", action="store_true",
                        help="evaluate, bundle: the GPT speaks without the reference clip's prompt (ref-free)")
    parser.add_argument("--no-measure", action="store_true",
                        help="bundle: write the model card without measuring the bundle (WER, similarity)")
    parser.add_argument("--rounds", type=int, default=1000, help="cycle: rounds of sovits, resynth, gpt, evaluate")
    parser.add_argument("--force", action="store_true",
                        help="snapshot: write the best measured point even if it does not improve on the committed one")
    parser.add_argument("--sovits-only", action="store_true", help="cycle: rounds of sovits and resynth only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = Recipe(args.corpus, args.work, args.snapshot_dir, args.design, args.tokens)
    if args.stage == "corpus":
        recipe.build_corpus(args.jobs)
    elif args.stage == "features":
        recipe.features()
    elif args.stage == "tokens":
        print(recipe.tokenizer())
    elif args.stage == "sovits":
        steps = recipe.train_sovits(args.max_steps, args.minutes, **parse_settings(args.settings))
        print(f"sovits: step {steps}")
    elif args.stage == "fork":
        if args.source is None:
            parser.error("fork needs --from WORK")
        recipe.fork_sovits(args.source, args.from_design, tuple(args.reinit))
    elif args.stage == "gpt":
        print(f"gpt: step {recipe.train_gpt(args.max_steps, args.minutes)}")
    elif args.stage == "export":
        export_states(recipe)
    elif args.stage == "resynth":
        resynthesis_wer(recipe, args.clips or 30)
    elif args.stage == "reading":
        phoneme_reading(recipe, args.clips or 30)
    elif args.stage == "heldout":
        recipe.add_point(_point(recipe, **gpt_heldout(recipe)))
    elif args.stage == "evaluate":
        evaluate(recipe, args.sentences, args.ref_free)
    elif args.stage == "follow":
        text_following(recipe, args.clips or 40)
    elif args.stage == "snapshot":
        snapshot(recipe, args.force)
    elif args.stage == "bundle":
        print(recipe.bundle(args.out, args.notice, ref_free=args.ref_free))
        measured = None
        if not args.no_measure:
            report = _voice_quality().run(args.out, args.corpus, args.sentences, 4, 2)
            measured = {"wer": report.wer, "sentences": report.sentences, "rtf": report.rtf,
                        "similarity": report.similarity}
        print(recipe.write_card(args.out, measured))
    else:
        for _ in range(args.rounds):
            recipe.train_sovits(args.max_steps, args.minutes or 30)
            resynthesis_wer(recipe, args.clips or 30)
            if args.sovits_only:
                continue
            recipe.train_gpt(args.max_steps, args.minutes or 30)
            evaluate(recipe, min(args.sentences, 10))


if __name__ == "__main__":
    main()
