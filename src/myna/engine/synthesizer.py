"""The Synthesizer: owns its models and per-voice prompt cache; text + voice -> speech.

Pipeline per fragment (upstream GPT-SoVITS v2): prompt phonemes + fragment phonemes (+ BERT) and the
reference's semantic tokens -> GPT -> semantic tokens -> SoVITS with the reference timbre -> audio.
One `torch.Generator` per request drives all sampling and noise in upstream's order, so a seed
reproduces upstream's output. A Synthesizer serves one request at a time (the GPT's KV cache is
its state); use one per worker. With emotions (myna.engine.emotion) each fragment gets its own Voice:
the GPT's prompt may come from an emotion clip, SoVITS's timbre always from the voice's own clip.
With a `watermarker` (myna.audio.watermark; `load_synthesizer` sets one
unless the operator turned the watermark off) every clip and every streamed chunk comes out marked.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from myna.audio.watermark import Watermarker, WatermarkStream
from myna.engine import expressive
from myna.engine.emotion import EmotionVoice
from myna.engine.options import SynthesisOptions
from myna.engine.reference import ReferenceAudio, load_reference
from myna.engine.streaming import ChunkPlan, NoiseTape, StreamDecoder, WindowDecoder, noise_generator
from myna.engine.t2s_decode import iter_semantic_tokens, seeded_generator
from myna.engine.textprep import Fragment, check_language, piece_fragment, prompt_text, text_fragment
from myna.engine.timing import Speech, SpeechChunk
from myna.engine.voice import Voice
from myna.errors import Cancelled, InputError
from myna.features.bert import ChineseBert
from myna.features.content import ContentEncoder
from myna.models.sovits import SoVITS
from myna.models.t2s import T2SModel
from myna.voices.references import EmotionReference

_VOICE_CACHE_SIZE = 16
StopCheck = Callable[[], bool] | None  # polled between tokens; True cancels the request


class Synthesizer:
    """GPT-SoVITS inference with models it owns; create with `myna.engine.loading`."""

    def __init__(
        self,
        gpt: T2SModel,
        sovits: SoVITS,
        content: ContentEncoder,
        bert: ChineseBert | None = None,
        speaker=None,
        version: str = "v2",
        polyphones=None,
        watermarker: Watermarker | None = None,
    ):
        self.gpt = gpt.eval()
        self.sovits = sovits.eval()
        self.content = content
        self.bert = bert
        self.speaker = speaker
        self.version = "v1" if version == "v1" else "v2"  # the phoneme symbol table
        self.polyphones = polyphones  # optional g2pW predictor for Chinese (myna.text.zh.g2pw.G2PW)
        self.watermarker = watermarker  # marks every output; None only when the operator turned it off
        self.sampling_rate = sovits.config.sampling_rate
        if sovits.config.is_pro and speaker is None:
            raise InputError(f"a {sovits.config.version} model needs the speaker-verification model (--sv FILE)")
        self._voices: OrderedDict[tuple, Voice] = OrderedDict()
        self._lock = threading.Lock()
        self.decoder = None  # a shared myna.engine.batch_decode.BatchDecoder, set by with_decoder()
        self.load_seconds: dict[str, float] = {}  # wall time per part, set by myna.engine.loading

    def with_decoder(self, decoder) -> Synthesizer:
        """A Synthesizer sharing these models whose GPT decoding goes through `decoder` (batched across its users)."""
        other = copy.copy(self)
        other._voices, other._lock, other.decoder = OrderedDict(), threading.Lock(), decoder
        return other

    # -- voices --------------------------------------------------------------------------------

    def voice(
        self,
        ref_audio: str | Path,
        ref_text: str | None = None,
        ref_lang: str = "zh",
        aux_refs: Sequence[str | Path] = (),
    ) -> Voice:
        """Prepare (or fetch from the cache) the voice of a reference clip; no `ref_text` = ref-free."""
        paths = [Path(ref_audio), *map(Path, aux_refs)]
        key = (tuple(_file_key(p) for p in paths), ref_text, ref_lang)
        with self._lock:
            if key in self._voices:
                self._voices.move_to_end(key)
                return self._voices[key]
            voice = self._build_voice(paths, ref_text, ref_lang)
            self._voices[key] = voice
            while len(self._voices) > _VOICE_CACHE_SIZE:
                self._voices.popitem(last=False)
            return voice

    def forget(self, path_part: str | Path) -> int:
        """Drop cached voices made from any file whose path contains `path_part` (a file, folder or voice id)."""
        part = str(path_part)
        with self._lock:
            stale = [key for key in self._voices if any(part in str(file[0]) for file in key[0])]
            for key in stale:
                del self._voices[key]
        return len(stale)

    def with_references(self, voice: Voice, references: Sequence[EmotionReference]) -> EmotionVoice:
        """`voice` (its clip gives the timbre) with emotion references for the GPT (myna.engine.emotion)."""
        return EmotionVoice(voice, references, self.voice)

    def _build_voice(self, paths: list[Path], ref_text: str | None, ref_lang: str) -> Voice:
        rate = self.sampling_rate
        clips = [load_reference(p, rate) for p in paths]
        notes = [note for clip in clips for note in clip.notes]
        specs = [self._spectrogram(clip) for clip in clips]
        sv_embs = [self.speaker.embed(clip.sv_input()) for clip in clips] if self.sovits.config.is_pro else None
        if ref_text is None:
            return Voice(None, None, specs, sv_embs, notes)
        check_language(ref_lang)
        prompt = text_fragment(prompt_text(ref_text, ref_lang), ref_lang, self.version, self.bert, self.polyphones)
        return Voice(self._prompt_tokens(clips[0]), prompt, specs, sv_embs, notes)

    def _spectrogram(self, clip: ReferenceAudio) -> torch.Tensor:
        cfg = self.sovits.config
        return clip.spectrogram(cfg.filter_length, cfg.hop_length, cfg.win_length)

    @torch.inference_mode()
    def _prompt_tokens(self, clip: ReferenceAudio) -> torch.Tensor:
        features = self.content.encode(clip.hubert_input())
        codes = self.sovits.extract_latent(features)
        return codes[0, 0][None].long()

    # -- synthesis -----------------------------------------------------------------------------

    def synthesize(
        self, text: str, lang: str, voice: Voice | EmotionVoice, options: SynthesisOptions | None = None,
        should_stop: StopCheck = None, watermark_payload: int = 0,
    ) -> np.ndarray:
        """Whole utterance as float32 mono audio at `sampling_rate` (fragments joined by pauses).

        `should_stop` is polled between semantic tokens; when it returns True, `Cancelled` is raised.
        The audio carries the watermark with `watermark_payload` (32 bits: which request made it).
        """
        options = options or SynthesisOptions()
        if expressive.wanted(text, options):  # SSML or prosody options
            return self.speak(text, lang, voice, options, should_stop, watermark_payload).audio
        fragments = self._fragments(text, lang, voice, options)
        generator = seeded_generator(options.seed)
        # Upstream decodes fragments shortest text first (its bucketing) when speed is 1; the order
        # matters only for which random numbers each fragment draws.
        order = range(len(fragments))
        marking = self._marking(watermark_payload)
        if options.speed == 1.0:
            order = sorted(order, key=lambda i: len(fragments[i][0].norm_text))
        audio: list[np.ndarray] = [np.zeros(0, np.float32)] * len(fragments)
        for index in order:
            audio[index] = self._render(*fragments[index], options, generator, should_stop)
        whole = np.concatenate([self._with_pause(a, options) for a in audio])
        return marking.push(whole) if marking is not None else whole

    def stream(
        self, text: str, lang: str, voice: Voice | EmotionVoice, options: SynthesisOptions | None = None,
        should_stop: StopCheck = None, watermark_payload: int = 0,
    ) -> Iterator[np.ndarray]:
        """Validate and prepare now, then return a generator of audio chunks, in order.

        One chunk per fragment (plus its pause), or with `options.stream_chunk_tokens` > 0 (and speed 1)
        chunks of semantic tokens decoded while the GPT samples: the first after that many tokens.
        Each chunk is watermarked as it comes (no delay); the joined stream carries `watermark_payload`.
        """
        options = options or SynthesisOptions()
        if expressive.wanted(text, options):  # SSML or prosody options: one chunk per fragment
            return _audio_of(self.stream_speech(text, lang, voice, options, should_stop, watermark_payload))
        marking = self._marking(watermark_payload)
        fragments = self._fragments(text, lang, voice, options)
        generator = seeded_generator(options.seed)
        chunks = self._chunks(fragments, options, generator, should_stop)
        return _marked(chunks, marking) if marking is not None else chunks

    def _marking(self, payload: int) -> WatermarkStream | None:
        """A fresh watermark stream for one output (InputError for a bad payload), or None when off."""
        return self.watermarker.stream(self.sampling_rate, payload) if self.watermarker is not None else None

    def _chunks(
        self, fragments: list[tuple[Fragment, Voice]], options: SynthesisOptions, generator: torch.Generator,
        should_stop: StopCheck,
    ) -> Iterator[np.ndarray]:
        """The audio chunks of `stream`, before the watermark."""
        for index, (fragment, voice) in enumerate(fragments):
            if options.stream_chunk_tokens and options.speed == 1.0:  # token chunks (speed 1 only)
                yield from self._stream_fragment(fragment, voice, options, generator, index, should_stop)
                if options.pause > 0:
                    yield self._with_pause(np.zeros(0, np.float32), options)
            else:
                yield self._with_pause(self._render(fragment, voice, options, generator, should_stop), options)

    def speak(
        self, text: str, lang: str, voice: Voice | EmotionVoice, options: SynthesisOptions | None = None,
        should_stop: StopCheck = None, watermark_payload: int = 0,
    ) -> Speech:
        """Like `synthesize`, with word and phoneme timing (`Speech.words`, `.phonemes`, `.timing_dict()`).

        `text` may be SSML (see myna.text.ssml); `options` may ask for pitch, volume, an exact duration
        and a loudness contour that follows the reference's. The audio carries the watermark.
        """
        marking = self._marking(watermark_payload)
        speech = expressive.speak(self, text, lang, voice, options or SynthesisOptions(), should_stop)
        return replace(speech, audio=marking.push(speech.audio)) if marking is not None else speech

    def stream_speech(
        self, text: str, lang: str, voice: Voice | EmotionVoice, options: SynthesisOptions | None = None,
        should_stop: StopCheck = None, watermark_payload: int = 0,
    ) -> Iterator[SpeechChunk]:
        """Validate and plan now, then a generator of `SpeechChunk`s (one per fragment, pause included), each
        carrying the timing of the words it completes, in seconds from the start of the stream; each
        chunk's audio is watermarked as it comes."""
        marking = self._marking(watermark_payload)
        chunks = expressive.stream_speech(self, text, lang, voice, options or SynthesisOptions(), should_stop)
        return _marked_speech(chunks, marking) if marking is not None else chunks

    def semantic_tokens_locked(
        self, fragment: Fragment, voice: Voice, options: SynthesisOptions, generator: torch.Generator,
        should_stop: StopCheck = None,
    ) -> torch.Tensor:
        """`semantic_tokens` under this synthesizer's lock (the GPT's cache is one request's at a time)."""
        if should_stop is not None and should_stop():
            raise Cancelled("synthesis was cancelled")
        with self._lock, torch.inference_mode():
            return self.semantic_tokens(fragment, voice, options, generator, should_stop)

    def decode_tokens(
        self, tokens: torch.Tensor, fragment: Fragment, voice: Voice, options: SynthesisOptions,
        generator: torch.Generator, frame_positions: torch.Tensor | None = None,
    ) -> np.ndarray:
        """SoVITS: a fragment's semantic tokens -> float32 audio (peak <= 1); `frame_positions` warps time."""
        with self._lock, torch.inference_mode():
            wave = self.sovits.decode(
                tokens,
                fragment.phone_ids[None],
                voice.specs,
                noise_scale=options.noise_scale,
                speed=options.speed,
                sv_emb=voice.sv_embs,
                generator=generator,
                frame_positions=frame_positions,
            )
        audio = wave[0, 0].float().cpu().numpy()
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        return audio / peak if peak > 1 else audio

    def semantic_tokens(
        self,
        fragment: Fragment,
        voice: Voice,
        options: SynthesisOptions,
        generator: torch.Generator,
        should_stop: StopCheck = None,
    ) -> torch.Tensor:
        """The GPT's semantic tokens (N,) for one fragment; `Cancelled` once `should_stop()` is True."""
        kept = []
        for token in self._token_source(fragment, voice, options, generator, should_stop):
            if should_stop is not None and should_stop():
                raise Cancelled("synthesis was cancelled")
            kept.append(token)
        return torch.tensor(kept, dtype=torch.long, device=fragment.phone_ids.device)

    def _stream_fragment(
        self,
        fragment: Fragment,
        voice: Voice,
        options: SynthesisOptions,
        generator: torch.Generator,
        index: int,
        should_stop: StopCheck = None,
    ) -> Iterator[np.ndarray]:
        """One fragment's audio in token chunks (myna.engine.streaming), decoded while the GPT samples."""
        if should_stop is not None and should_stop():
            raise Cancelled("synthesis was cancelled")
        with self._lock:  # held across yields: the GPT's cache is this request's until the fragment ends
            with torch.inference_mode():
                ge = self.sovits.timbre(voice.specs, voice.sv_embs)
            channels = self.sovits.config.inter_channels
            noise = NoiseTape(channels, noise_generator(generator, index))
            window = WindowDecoder(self.sovits, fragment.phone_ids, ge, noise, options.noise_scale)
            decoder = StreamDecoder(window, ChunkPlan.from_tokens(options.stream_chunk_tokens))
            tokens = self._token_source(fragment, voice, options, generator, should_stop)
            try:
                for token in tokens:
                    if should_stop is not None and should_stop():
                        raise Cancelled("synthesis was cancelled")
                    chunk = decoder.push(token)
                    if chunk is not None:
                        yield chunk
            finally:
                tokens.close()  # a cancelled or abandoned stream frees the GPT (or its batch row) now
            if decoder.tokens:  # draw the one-shot decode's noise too: later fragments sample as unchunked
                torch.randn((1, channels, len(decoder.tokens) * window.frames_per_token), generator=generator)
            last = decoder.finish()
        if last is not None:
            yield last

    def _token_source(
        self, fragment: Fragment, voice: Voice, options: SynthesisOptions, generator: torch.Generator, should_stop
    ) -> Iterator[int]:
        """The GPT's tokens for `fragment` one by one: the shared batched decoder when set, else this GPT."""
        phones, bert = _gpt_text(voice.prompt, fragment)
        if voice.mix is not None:  # two prompts decoded in step, their distributions mixed (emotion strength)
            from myna.engine.emotion_decode import iter_mixed_tokens

            mix_phones, mix_bert = _gpt_text(voice.mix.prompt, fragment)
            return iter_mixed_tokens(self.gpt, (phones, bert, voice.semantic), (mix_phones, mix_bert, voice.mix.semantic),
                                     voice.mix.strength, options.sampling(), generator, options.max_tokens)
        if self.decoder is not None:
            return self.decoder.iter_tokens(phones, bert, voice.semantic, options.sampling(), generator,
                                            early_stop_num=options.max_tokens, should_stop=should_stop)
        return iter_semantic_tokens(
            self.gpt, phones, bert, voice.semantic, options.sampling(), generator, early_stop_num=options.max_tokens
        )

    def _fragments(
        self, text: str, lang: str, voice: Voice | EmotionVoice, options: SynthesisOptions
    ) -> list[tuple[Fragment, Voice]]:
        """Text -> fragments, each with the Voice it is spoken with (emotion routing: myna.engine.emotion)."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the text to speak is empty")
        check_language(lang)
        fragments = self.routed(voice).fragments(
            text, lang, options.split, options.emotion, options.emotion_strength,
            lambda piece: piece_fragment(piece, lang, self.version, self.bert, self.polyphones),
            mixing=self.decoder is None,
        )
        if not fragments:
            raise InputError(f"nothing to speak in {text[:80]!r}: it holds no pronounceable text")
        return fragments

    def _render(
        self,
        fragment: Fragment,
        voice: Voice,
        options: SynthesisOptions,
        generator: torch.Generator,
        should_stop: StopCheck = None,
    ) -> np.ndarray:
        if should_stop is not None and should_stop():
            raise Cancelled("synthesis was cancelled")
        with self._lock, torch.inference_mode():
            tokens = self.semantic_tokens(fragment, voice, options, generator, should_stop)
        if tokens.numel() == 0:
            return np.zeros(0, np.float32)
        return self.decode_tokens(tokens, fragment, voice, options, generator)

    def routed(self, voice: Voice | EmotionVoice) -> EmotionVoice:
        """`voice` as an EmotionVoice (one without references when it is a plain Voice)."""
        return voice if isinstance(voice, EmotionVoice) else EmotionVoice(voice, (), self.voice)

    def _with_pause(self, audio: np.ndarray, options: SynthesisOptions) -> np.ndarray:
        return np.concatenate([audio, np.zeros(int(self.sampling_rate * options.pause), np.float32)])


def _marked(chunks: Iterator[np.ndarray], marking: WatermarkStream) -> Iterator[np.ndarray]:
    """Each chunk watermarked as it comes; closing this closes `chunks` (a disconnect stops decoding)."""
    try:
        for chunk in chunks:
            yield marking.push(chunk)
    finally:
        chunks.close()


def _marked_speech(chunks: Iterator[SpeechChunk], marking: WatermarkStream) -> Iterator[SpeechChunk]:
    """`_marked` for timed chunks: each chunk's audio watermarked as it comes, its timing kept."""
    try:
        for chunk in chunks:
            yield replace(chunk, audio=marking.push(chunk.audio))
    finally:
        chunks.close()


def _audio_of(chunks: Iterator[SpeechChunk]) -> Iterator[np.ndarray]:
    """The audio of timed chunks; closing this closes `chunks` (a disconnect stops decoding)."""
    try:
        for chunk in chunks:
            yield chunk.audio
    finally:
        chunks.close()


def _gpt_text(prompt: Fragment | None, fragment: Fragment) -> tuple[torch.Tensor, torch.Tensor]:
    """The GPT's text input: the prompt's phonemes (none when ref-free), then the fragment's; (1, N) and (1, 1024, N)."""
    if prompt is None:
        return fragment.phone_ids[None], fragment.bert[None]
    return torch.cat([prompt.phone_ids, fragment.phone_ids])[None], torch.cat([prompt.bert, fragment.bert], dim=1)[None]


def _file_key(path: Path) -> tuple:
    """Identity of a reference file for the voice cache: path, size and modification time."""
    try:
        stat = path.stat()
    except OSError:
        return (str(path), None, None)
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
