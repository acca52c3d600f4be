"""Emotion in synthesis requests: the voice's references for the engine, cache-key fields, and notes.

A request asks for an emotion with `emotion` (a label or `auto`), OpenAI's `instructions` (mapped to
a label when `emotion` is absent: schemas.SpeechRequest), or `[label]` tags in its text. Only then
are the voice's emotion references read and handed to the engine (myna.engine.emotion); a request
that asks for none runs exactly as before, and its cache key is unchanged.

A label the voice has no reference for falls back to the voice's own clip; the engine's note saying
so is read before the first chunk leaves the worker and answered as the `X-Myna-Note` header (and in
the request's log line). Results with notes are not cached, so a repeat says it again.

A batched server (`--batch-size` above 1) decodes every GPT step of its requests together; an
emotion strength other than 0 or 1 decodes two prompts in step, which it cannot join, so such a
request is refused with 422 `emotion_strength_batched` before any work is queued.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from myna.engine.emotion import EmotionVoice
from myna.engine.options import SynthesisOptions
from myna.engine.voice import Voice
from myna.server.errors import ApiError
from myna.server.worker import JobRun
from myna.text.emotion_markup import has_tags
from myna.voices.references import EmotionReference

_END = object()


@dataclass
class EmotionAsk:
    """What a request asks of emotion routing: the voice's references, and the notes its run leaves."""

    references: list[EmotionReference]
    notes: list[str] = field(default_factory=list)
    routed: EmotionVoice | None = None  # the voice the job speaks with, once made

    def voice(self, synth, voice: Voice) -> EmotionVoice:
        """`voice` (the timbre) with this request's emotion references (call in the job, on the worker)."""
        self.routed = synth.with_references(voice, self.references)
        return self.routed

    def watched(self, run: JobRun) -> JobRun:
        """`run` whose engine notes are copied to `notes` before its first chunk leaves (routing is done by then)."""

        def watched_run(synth, should_stop) -> Iterator:
            chunks = iter(run(synth, should_stop))
            try:
                first = next(chunks, _END)
                self._copy_notes()
                if first is not _END:
                    yield first
                    yield from chunks
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()  # a cancelled job stops its decoding now

        return watched_run

    def _copy_notes(self) -> None:
        if self.routed is not None:
            self.notes[:] = self.routed.notes


def emotion_ask(service, voice_id: str | None, text: str, options: SynthesisOptions) -> EmotionAsk | None:
    """The emotion part of a request (None when it asks for no emotion); raises 422 where the server cannot mix.

    Call off the event loop: an encrypted registry decrypts the reference clips here.
    """
    if options.emotion is None and not has_tags(text):
        return None
    if service.pool.batch_size > 1 and options.emotion_strength not in (0.0, 1.0):
        raise ApiError(422, f"emotion_strength {options.emotion_strength:g} mixes two GPT prompts, which this server "
                       f"does not do: it decodes requests in batches (--batch-size {service.pool.batch_size}); send "
                       "emotion_strength 0 or 1, or run the server with --batch-size 1", "emotion_strength_batched")
    references = service.references.references(voice_id) if voice_id is not None else []
    return EmotionAsk(references)


def cache_params(params: dict, ask: EmotionAsk | None, options: SynthesisOptions) -> dict:
    """`params` (a request's cache-key fields) with the emotion it resolved to and the references it may use.

    Without an emotion asked the emotion fields are dropped, so the key is the one made before they existed.
    """
    params.pop("emotion", None)
    params.pop("emotion_strength", None)
    if ask is not None:
        params.update(emotion=options.emotion, emotion_strength=options.emotion_strength,
                      emotion_references=sorted([ref.emotion, ref.id] for ref in ask.references))
    return params
