"""`myna data prepare|features|synth|review`: fine-tuning datasets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.cli.common import add_model_args
from myna.cli.train import ASR_HELP, asr_model_path, needs_training_extra
from myna.errors import InputError, MynaError
from myna.features.asr import LOW_CONFIDENCE


def cmd_data_prepare(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna data prepare`: recordings (or a .list) -> sliced, cleaned, transcribed utterances + .list."""
    from myna.train.prepare import PrepareOptions, prepare_dataset
    from myna.train.slicing import SliceConfig

    try:
        slicing = SliceConfig(min_seconds=args.min_seconds, max_seconds=args.max_seconds,
                              threshold_db=args.slice_threshold, min_pause=args.min_interval / 1000,
                              hop=args.hop / 1000, keep_silence=args.max_silence_kept / 1000)
        options = PrepareOptions(
            speaker=args.speaker, lang=args.lang, asr_model=asr_model_path(args.asr_model),
            denoise=args.denoise, slicing=slicing, device=args.device, progress=not args.quiet, append=args.append,
        )
        report = prepare_dataset(args.inputs, args.out, options)
    except MynaError as exc:
        err.write(f"myna data prepare: {exc}\n")
        return 1
    for line in report.summary():
        err.write(f"myna data prepare: {line}\n")
    out.write(f"{report.list_path}\n")
    return 0


def cmd_data_features(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna data features`: a .list -> cached phonemes, BERT, HuBERT, semantic tokens (and SV embeddings)."""
    from myna.train.features import FeatureModels, extract_features

    try:
        if args.model_dir:
            from myna.engine.loading import ModelPaths

            paths = ModelPaths.from_model_dir(args.model_dir, args.model_version)
            hubert, sovits, bert, sv = paths.hubert, paths.sovits, paths.bert, paths.sv
        elif args.hubert and args.sovits:
            hubert, sovits = Path(args.hubert), Path(args.sovits)
            bert, sv = (Path(v) if v else None for v in (args.bert, args.sv))
        else:
            raise InputError("no models given: pass --model-dir DIR or both --hubert DIR and --sovits FILE")
        report = extract_features(args.list, args.out, FeatureModels(hubert, sovits, bert, sv, args.device),
                                  progress=not args.quiet)
    except MynaError as exc:
        err.write(f"myna data features: {exc}\n")
        return 1
    for line in report.summary():
        err.write(f"myna data features: {line}\n")
    out.write(f"{report.manifest}\n")
    return 0


def _add_data_commands(commands) -> None:
    """`myna data prepare|features|synth` (datasets)."""
    data = commands.add_parser("data", help="prepare a fine-tuning dataset (prepare, features, synth, review)",
                               description="Build a fine-tuning dataset: recordings -> .list -> cached features.")
    steps = data.add_subparsers(dest="data_command", required=True, metavar="STEP")
    prep = steps.add_parser(
        "prepare", help="slice, clean and transcribe recordings into OUT/dataset.list",
        description="Cut recordings (wav/flac/mp3/ogg/m4a, files or folders) at pauses into 2-12 s utterances, "
                    "drop clipped or near-silent ones, normalize loudness, transcribe, and write OUT/wavs/ and "
                    "OUT/dataset.list (path|speaker|LANG|text) for proofreading. A .list input is used as is.",
    )
    prep.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files, folders of them, or .list files")
    prep.add_argument("--out", required=True, metavar="DIR", help="output folder")
    prep.add_argument("--speaker", help="speaker name in the list (default: the output folder's name)")
    prep.add_argument("--lang", help="spoken language as a whisper code (en, zh, ja); default: detected")
    prep.add_argument("--asr-model", metavar="DIR|NAME", help=ASR_HELP)
    prep.add_argument("--denoise", action="store_true", help="remove background noise with DeepFilterNet3 first")
    prep.add_argument("--append", action="store_true", help="OUT already holds a dataset: add these recordings to it "
                      "(its lines are kept as they are; the old list is backed up first)")
    prep.add_argument("--min-seconds", type=float, default=2.0, help="shortest utterance kept (default 2)")
    prep.add_argument("--max-seconds", type=float, default=12.0, help="longest utterance (default 12)")
    cut = prep.add_argument_group("slicing (upstream's slicer settings; defaults adapt to each file)")
    cut.add_argument("--slice-threshold", type=float, metavar="DB", help="frames quieter than this (dBFS) are pause "
                     "(default: per file, between its noise floor and its loud level)")
    cut.add_argument("--min-interval", type=float, default=300, metavar="MS", help="shortest pause to cut at (default 300)")
    cut.add_argument("--hop", type=float, default=10, metavar="MS", help="level analysis hop (default 10)")
    cut.add_argument("--max-silence-kept", type=float, default=150, metavar="MS",
                     help="pause kept at each end of an utterance (default 150)")
    prep.add_argument("--device", default="cpu", help="device for speech recognition (default cpu)")
    prep.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    prep.set_defaults(handler=needs_training_extra("myna data prepare", cmd_data_prepare))
    feats = steps.add_parser(
        "features", help="compute and cache the training features of a .list",
        description="Phonemes, BERT (Chinese), HuBERT features, semantic tokens and, for v2Pro, speaker "
                    "embeddings of every utterance, cached in OUT (unchanged utterances are reused).",
    )
    feats.add_argument("list", metavar="LIST", help="transcript list (path|speaker|LANG|text)")
    feats.add_argument("--out", required=True, metavar="DIR", help="feature cache folder")
    add_model_args(feats, gpt=False)
    feats.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    feats.set_defaults(handler=needs_training_extra("myna data features", cmd_data_features))
    _add_synth_command(steps)
    _add_review_command(steps)


def cmd_data_synth(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna data synth`: a multi-speaker English corpus from local, freely licensed voices."""
    from myna.train.synth.corpus import SynthOptions, build_corpus
    from myna.train.synth.voices import DEFAULT_VOICES

    voices = tuple(v.strip() for v in args.voices.split(",") if v.strip()) if args.voices else DEFAULT_VOICES
    try:
        report = build_corpus(SynthOptions(
            Path(args.out), utterances=args.utterances, wide_utterances=args.wide_utterances, voices=voices,
            pseudo_speakers=args.pseudo_speakers, seed=args.seed, jobs=args.jobs, rate=args.rate,
            heldout_family=args.heldout_family or None, heldout_speakers=args.heldout_speakers,
            progress=not args.quiet))
    except MynaError as exc:
        err.write(f"myna data synth: {exc}\n")
        return 1
    for line in report.summary():
        err.write(f"myna data synth: {line}\n")
    out.write(f"{report.train_list}\n")
    return 0


def _add_synth_command(steps) -> None:
    """`myna data synth` (the bundled default voice's training corpus)."""
    synth = steps.add_parser(
        "synth", help="render a multi-speaker English corpus from local flite/festival/espeak-ng voices",
        description="Speak generated English sentences with the installed flite, festival and espeak-ng voices "
                    "plus pitch/formant/tempo-shifted pseudo-speakers; write OUT/wavs/, OUT/corpus.list, "
                    "OUT/heldout_speakers.list and the licence record OUT/SOURCES.md (resumable).")
    synth.add_argument("--out", required=True, metavar="DIR", help="output folder")
    synth.add_argument("--utterances", type=int, default=100, help="utterances per training speaker (default 100)")
    synth.add_argument("--wide-utterances", type=int, default=0, metavar="N",
                       help="more utterances per training speaker, of sentences whose nouns, adjectives and places "
                            "come mostly from ~16,600 common English words (default 0)")
    synth.add_argument("--voices", metavar="LIST", help="comma-separated base voices (default: every flite, "
                       "festival and espeak-ng voice the recipe knows; an unknown name lists them)")
    synth.add_argument("--pseudo-speakers", type=int, default=16, metavar="K",
                       help="shifted pseudo-speakers added to the base voices (default 16)")
    synth.add_argument("--seed", type=int, default=0, help="seed of the sentences and shifts (default 0)")
    synth.add_argument("--jobs", type=int, default=1, metavar="J", help="parallel renderers (default 1)")
    synth.add_argument("--rate", type=int, default=22050, help="output sample rate (default 22050)")
    synth.add_argument("--heldout-family", default="ked", metavar="FAMILY",
                       help="speaker family kept out of training (default ked; '' for none)")
    synth.add_argument("--heldout-speakers", type=int, default=3, metavar="N",
                       help="speakers kept out of training for zero-shot tests (default 3)")
    synth.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(handler=needs_training_extra("myna data synth", cmd_data_synth))


_REVIEW_HELP = """commands (then Enter):
  Enter / n      next line            b      previous line        f   next flagged line
  p              play the clip        e TEXT replace the transcript
  d              drop the line        m      merge with the next line
  s SEC | A | B  split at SEC seconds into transcripts A and B
  g N            go to line N         q      quit (every change is already saved)"""


def _show(item, total: int) -> str:
    mark = "?" if item.flagged else " "
    conf = "" if item.confidence is None else f", confidence {item.confidence:.2f}"
    doubts = f", doubtful: {' '.join(item.doubtful_words)}" if item.doubtful_words else ""
    length = "" if item.seconds is None else f"{item.seconds:.1f} s"
    return f"{mark}[{item.index + 1}/{total}] {item.audio.name} ({length}{conf}{doubts})\n   {item.text}\n"


def _play(path: Path, err: TextIO) -> None:
    import shutil
    import subprocess

    for player in (["aplay", "-q"], ["paplay"], ["ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet"]):
        if shutil.which(player[0]):
            subprocess.run([*player, str(path)], check=False, timeout=120)
            return
    err.write(f"no audio player found (aplay, paplay or ffplay); the clip is {path}\n")


def cmd_data_review(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna data review`: go through a .list line by line (flagged lines marked), editing as you go."""
    import io

    from myna.train.review import Review

    try:
        review = Review(args.list, args.threshold)
    except MynaError as exc:
        err.write(f"myna data review: {exc}\n")
        return 1
    items = review.items()
    if args.flagged:
        for item in review.flagged():
            out.write(_show(item, len(items)))
        return 0
    out.write(_REVIEW_HELP + "\n")
    lines = io.TextIOWrapper(stdin, encoding="utf-8")
    index = next((i.index for i in items if i.flagged), 0) if args.start_flagged else 0
    while review.entries:
        index = min(index, len(review.entries) - 1)
        out.write(_show(review.item(index), len(review.entries)))
        out.write("> ")
        out.flush()
        line = lines.readline()
        if not line or line.strip() == "q":
            break
        command, _, rest = line.strip().partition(" ")
        try:
            if command in ("", "n"):
                index += 1
                if index >= len(review.entries):
                    break
            elif command == "b":
                index = max(index - 1, 0)
            elif command == "f":
                later = [i.index for i in review.items() if i.flagged and i.index > index]
                index = later[0] if later else index
            elif command == "g":
                index = max(int(rest) - 1, 0)
            elif command == "p":
                _play(review.item(index).audio, err)
            elif command == "e":
                review.edit(index, rest)
            elif command == "d":
                review.drop(index)
            elif command == "m":
                review.merge(index)
            elif command == "s":
                at, first, second = (part.strip() for part in rest.split("|"))
                review.split(index, float(at), first, second)
            else:
                out.write(_REVIEW_HELP + "\n")
        except MynaError as exc:
            out.write(f"  {exc}\n")
        except ValueError:
            out.write("  could not read that command\n" + _REVIEW_HELP + "\n")
    if review.backup is not None:
        err.write(f"myna data review: saved {review.path} (the list before these changes: {review.backup})\n")
    return 0


def _add_review_command(steps) -> None:
    """`myna data review` (proofreading in the terminal)."""
    review = steps.add_parser(
        "review", help="proofread a .list: each clip with its transcript, doubtful ones flagged",
        description="Go through a transcript list line by line: play each clip (aplay/paplay/ffplay), see its "
                    "transcript and the words Whisper was unsure of, and edit, drop, merge or split lines. Every "
                    "change is saved at once; the list before the first change is kept as a .bak file.")
    review.add_argument("list", metavar="LIST", help="transcript list (e.g. data/anna/dataset.list)")
    review.add_argument("--threshold", type=float, default=LOW_CONFIDENCE,
                        help=f"flag words Whisper gave a lower probability than this (default {LOW_CONFIDENCE})")
    review.add_argument("--flagged", action="store_true", help="only print the flagged lines and exit")
    review.add_argument("--start-flagged", action="store_true", help="start at the first flagged line")
    review.set_defaults(handler=needs_training_extra("myna data review", cmd_data_review))


def register(commands) -> None:
    """Add the `data` subcommand."""
    _add_data_commands(commands)
