"""`myna say`: speak text in the voice of a reference clip (or of a voice trained with `myna train`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO, TextIO

from myna.cli.common import add_model_args, data_dir, model_paths
from myna.errors import InputError, MynaError


def _use_default_voice(args: argparse.Namespace, err: TextIO) -> None:
    """No model named at all: speak with the default voice (its models, and its clip when --ref is absent)."""
    from myna.config import Settings
    from myna.engine.default_voice import find_default_voice

    if args.voice or args.model_dir or args.gpt or args.sovits:
        if args.model:
            raise InputError("--model names a pulled version: give it alone, not with --model-dir, --gpt/--sovits "
                             "or --voice")
        return
    if _use_pulled_model(args, Settings.from_env()):
        return
    default = find_default_voice(Settings.from_env().default_voice)
    args.voice_folder = default.root  # its emotion references (references.json) come along
    if default.notice:
        err.write(f"myna say: note: {default.notice}\n")
    paths = default.paths
    args.gpt, args.sovits = str(paths.gpt), str(paths.sovits)
    for key in ("hubert", "bert", "sv"):
        setattr(args, key, getattr(args, key) or (getattr(paths, key) and str(getattr(paths, key))))
    if not args.ref:
        args.ref, args.ref_text, args.ref_lang = str(default.ref), default.ref_text, default.ref_lang
    args.lang = args.lang or default.lang
    args.ref_lang = args.ref_lang or default.ref_lang


def _use_pulled_model(args: argparse.Namespace, settings) -> bool:
    """--model VERSION (or MYNA_MODEL), or with no default voice installed the newest pulled version; False if
    the default voice applies. Without --ref the bundled reference clip is cloned."""
    from myna.engine.default_voice import BUNDLED_DIR
    from myna.engine.voice_file import VOICE_FILE
    from myna.weights.reference import bundled_reference
    from myna.weights.store import ModelStore

    version = args.model or settings.model
    if version is None and (settings.default_voice is not None or (BUNDLED_DIR / VOICE_FILE).is_file()):
        return False
    pulled = ModelStore(settings.models_dir).locate(version)  # the error names the `myna models pull` to run
    args.model_dir, args.model_version = str(pulled.root), pulled.version
    if pulled.g2pw is not None and pulled.version != "v1" and not args.g2pw:
        args.g2pw = str(pulled.g2pw)  # pulled with --g2pw: read Chinese polyphones as upstream does
    if not args.ref:
        clip = bundled_reference()
        args.ref, args.ref_text, args.ref_lang = str(clip.path), clip.text, clip.lang
    args.lang = args.lang or "auto"
    return True


def _use_trained_voice(args: argparse.Namespace) -> None:
    """`say --voice NAME`: take the model files (and, without --ref, the reference) from a trained voice."""
    if args.voice:
        from myna.engine.voice_file import read_trained_voice, trained_voice_dir

        voice = read_trained_voice(data_dir(args), args.voice)
        args.voice_folder = trained_voice_dir(data_dir(args), args.voice)  # and its emotion references
        args.model_dir = None
        for key in ("gpt", "sovits", "hubert", "bert", "sv"):
            setattr(args, key, getattr(args, key) or (getattr(voice, key) and str(getattr(voice, key))))
        if not args.ref and voice.ref is not None:
            args.ref, args.ref_text, args.ref_lang = str(voice.ref), voice.ref_text, voice.ref_lang or "zh"
        args.lang = args.lang or voice.lang
    if not args.ref:
        raise InputError("no reference clip: pass --ref CLIP (or --voice NAME of a trained voice)")


def cmd_say(args: argparse.Namespace, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """`myna say`: synthesize TEXT in the voice of the reference clip into a WAV file."""
    import time

    try:
        from myna.audio.io import write_wav
        from myna.engine.loading import load_synthesizer
        from myna.engine.options import SynthesisOptions

        text = stdin.read().decode("utf-8") if args.text == "-" else args.text
        options = SynthesisOptions(
            top_k=args.top_k, top_p=args.top_p, temperature=args.temperature,
            repetition_penalty=args.repetition_penalty, seed=args.seed, speed=args.speed,
            noise_scale=args.noise_scale, split=args.split, pause=args.pause, max_tokens=args.max_tokens,
            **_prosody_options(args), **_emotion_options(args),
        )
        for path in (args.out, args.timestamps, args.subtitles):
            if path and not Path(path).parent.is_dir():
                raise InputError(f"{path}: the folder {Path(path).parent} does not exist")
        if args.subtitles:
            from myna.engine.subtitles import subtitle_format

            subtitle_format(args.subtitles)
        started = time.perf_counter()
        _use_default_voice(args, err)
        _use_trained_voice(args)
        args.lang, args.ref_lang = args.lang or "zh", args.ref_lang or "zh"
        from myna.config import Settings

        settings = Settings.from_env()
        synth = load_synthesizer(model_paths(args), args.device, args.precision, settings.cpu_kernels,
                                 watermark=settings.watermark)
        if not settings.watermark:
            err.write("myna say: note: the output carries no watermark (MYNA_WATERMARK=0)\n")
        voice = synth.voice(args.ref, args.ref_text, args.ref_lang, args.aux_ref or ())
        for note in voice.notes:
            err.write(f"myna say: note: {note}\n")
        voice = synth.with_references(voice, _emotion_references(args, options))
        loaded = time.perf_counter()
        if args.timestamps or args.subtitles:
            speech = synth.speak(text, args.lang, voice, options)
            audio = speech.audio
            _write_timing(args, speech)
        else:
            audio = synth.synthesize(text, args.lang, voice, options)
        for note in voice.notes:  # emotions that fell back to the voice's own clip
            err.write(f"myna say: note: {note}\n")
        write_wav(args.out, audio, synth.sampling_rate)
    except UnicodeDecodeError as exc:
        err.write(f"myna say: the text on stdin is not valid UTF-8 ({exc.reason})\n")
        return 1
    except MynaError as exc:
        err.write(f"myna say: {exc}\n")
        return 1
    seconds = len(audio) / synth.sampling_rate
    spent = time.perf_counter() - loaded
    err.write(f"myna say: wrote {args.out} ({seconds:.2f} s of audio in {spent:.2f} s, "
              f"real-time factor {spent / max(seconds, 1e-9):.3f}; models loaded in {loaded - started:.1f} s)\n")
    return 0


def _prosody_options(args: argparse.Namespace) -> dict:
    """The prosody fields of SynthesisOptions from the command line."""
    return {"ssml": True if args.ssml else None, "pitch": args.pitch, "volume": args.volume,
            "duration": args.duration, "energy": args.energy}


def _write_timing(args: argparse.Namespace, speech) -> None:
    """--timestamps (JSON) and --subtitles (.srt/.vtt) from the speech's word timing."""
    from myna.engine.subtitles import write_subtitles, write_timestamps

    if args.timestamps:
        write_timestamps(args.timestamps, speech)
    if args.subtitles:
        write_subtitles(args.subtitles, speech)


def _add_prosody_args(say) -> None:
    """Flags for SSML, pitch, volume, exact duration, loudness contour and word timing."""
    group = say.add_argument_group("prosody and timing")
    group.add_argument("--ssml", action="store_true",
                       help="read TEXT as SSML (automatic when it starts with <speak>)")
    group.add_argument("--pitch", type=float, default=0.0, metavar="SEMITONES",
                       help="raise (or with a minus, lower) the pitch, -12..12")
    group.add_argument("--volume", type=float, default=0.0, metavar="DB", help="louder or quieter in dB, -40..20")
    group.add_argument("--duration", type=float, metavar="SECONDS",
                       help="make the audio exactly this long (speech time-warped, words unchanged)")
    group.add_argument("--energy", type=float, default=0.0, metavar="0..1",
                       help="how far the loudness contour follows the reference clip's (default 0: off)")
    group.add_argument("--timestamps", metavar="OUT.json", help="write word and phoneme start/end times")
    group.add_argument("--subtitles", metavar="OUT.srt|OUT.vtt", help="write subtitles timed to the words")


# -- emotion (myna.engine.emotion) ------------------------------------------------------------------

ONE_OFF_LABEL = "custom"  # the label of an --emotion-ref clip when --emotion names none


def _emotion_options(args: argparse.Namespace) -> dict:
    """The emotion fields of SynthesisOptions: --emotion (the one-off clip's label with --emotion-ref alone)."""
    emotion = args.emotion
    if args.emotion_ref is None:
        if args.emotion_ref_text:
            raise InputError("--emotion-ref-text is the transcript of --emotion-ref CLIP: give the clip too")
    elif not args.emotion_ref_text:
        raise InputError("--emotion-ref needs its transcript (--emotion-ref-text): the emotion reaches the GPT "
                         "through the clip's tokens and the transcript's phonemes")
    elif (emotion or "").strip().lower() == "auto":
        raise InputError("--emotion-ref gives one clip for one label: use --emotion LABEL (or none) with it, not auto")
    else:
        emotion = emotion or ONE_OFF_LABEL
    return {"emotion": emotion, "emotion_strength": args.emotion_strength}


def _emotion_references(args: argparse.Namespace, options) -> list:
    """The voice folder's references, then --references DIR's, then --emotion-ref (a later one wins per label)."""
    from myna.voices.references import EmotionReference, ReferenceFolder

    folders = [getattr(args, "voice_folder", None), *(args.references or [])]
    references = [ref for folder in folders if folder is not None for ref in ReferenceFolder(folder).list()]
    if args.emotion_ref:
        references.append(EmotionReference("emotion-ref", options.emotion, Path(args.emotion_ref),
                                           args.emotion_ref_text, args.emotion_ref_lang or args.ref_lang))
    return references


def _add_emotion_args(say) -> None:
    """Flags for the emotion clip (GPT prompt) apart from the voice's own clip (timbre)."""
    group = say.add_argument_group(
        "emotion", "the emotion clip prompts the GPT, the voice's own clip (--ref) keeps the timbre; inline tags "
        "switch it: '[happy] Great news! [sad] But not for everyone.'")
    group.add_argument("--emotion", metavar="LABEL", help="a label of the voice's references (neutral, happy, sad, "
                       "angry, surprised, fearful, calm, whisper or any word), or auto: picked per sentence")
    group.add_argument("--emotion-strength", type=float, default=1.0, metavar="S",
                       help="0 = the voice's own clip alone, 1 = the emotion clip's prompt (default), up to 1.5")
    group.add_argument("--emotion-ref", metavar="CLIP", help="a one-off emotion clip (labelled --emotion, else "
                       f"'{ONE_OFF_LABEL}' and used for all text)")
    group.add_argument("--emotion-ref-text", metavar="TEXT", help="transcript of --emotion-ref")
    group.add_argument("--emotion-ref-lang", metavar="LANG", help="language of --emotion-ref-text (default --ref-lang)")
    group.add_argument("--references", action="append", metavar="DIR",
                       help="a folder of emotion references (made with `myna voices references add --dir DIR`)")


def register(commands) -> None:
    """Add the `say` subcommand."""
    say = commands.add_parser(
        "say",
        help="speak TEXT in the voice of a reference clip (zero-shot)",
        description="Synthesize TEXT ('-' reads stdin) in the voice of --ref into a 16-bit WAV file.",
    )
    say.add_argument("text", metavar="TEXT")
    say.add_argument("-o", "--out", required=True, metavar="OUT.wav")
    say.add_argument("--lang", help="language of TEXT: zh, en, ja, all_zh, all_ja, auto "
                     "(default zh; the default voice's language when no model is given; auto with a pulled model)")
    say.add_argument("--ref", metavar="CLIP", help="reference clip, 3-10 s of speech (default: the voice's own clip)")
    say.add_argument("--voice", metavar="NAME", help="a voice trained with `myna train`: its models and reference")
    say.add_argument("--model", metavar="VERSION",
                     help="a version pulled with `myna models pull` (v1, v2, v2Pro, v2ProPlus; MYNA_MODEL); without "
                          "--ref it clones the bundled reference clip")
    say.add_argument("--data-dir", help="where trained voices live (default MYNA_DATA_DIR or ~/.local/share/myna)")
    say.add_argument("--ref-text", help="transcript of the reference clip (omit for ref-free mode)")
    say.add_argument("--ref-lang", help="language of --ref-text (default zh; the default voice's with no model given)")
    say.add_argument("--aux-ref", action="append", metavar="CLIP", help="more clips whose timbre is averaged in")
    add_model_args(say, g2pw=True)
    knobs = say.add_argument_group("synthesis (defaults are upstream api_v2's)")
    knobs.add_argument("--top-k", type=int, default=15)
    knobs.add_argument("--top-p", type=float, default=1.0)
    knobs.add_argument("--temperature", type=float, default=1.0)
    knobs.add_argument("--repetition-penalty", type=float, default=1.35)
    knobs.add_argument("--seed", type=int, default=-1, help="-1 = random")
    knobs.add_argument("--speed", type=float, default=1.0)
    knobs.add_argument("--noise-scale", type=float, default=0.5)
    knobs.add_argument("--max-tokens", type=int, help="stop after this many semantic tokens per fragment")
    knobs.add_argument("--split", default="cut5", help="how to cut long text: cut0..cut5 or myna's names")
    knobs.add_argument("--pause", type=float, default=0.3, help="seconds of silence after each fragment")
    _add_prosody_args(say)
    _add_emotion_args(say)
    say.set_defaults(handler=cmd_say)
