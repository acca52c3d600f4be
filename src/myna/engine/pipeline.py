"""Speak fragment i+1 with the GPT while SoVITS vocodes fragment i: the same audio, sooner.

A multi-fragment request alternates GPT decoding (memory-bound: int8 weights streamed every step)
and SoVITS vocoding (compute-bound convolutions). Run one after the other, each leaves the other's
resources idle. Here the calling thread decodes every fragment in the usual order; once a fragment's
tokens are there, it also draws that fragment's prior noise (`SoVITS.prior`, where the request's
generator is used) and hands the rest (reverse flow and vocoder, no randomness) to a worker thread,
then goes on with the next fragment. The generator sees exactly the sequential order of draws, and
the worker runs with the caller's intra-op thread count (oneDNN's results depend on it), so the
audio equals the sequential path's bit for bit (tests check it).

Both threads keep the caller's torch thread count, so up to twice that many threads share the
cores while they overlap; set OMP_WAIT_POLICY=PASSIVE (see the README) so that waiting threads
sleep instead of spinning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from myna.engine.options import SynthesisOptions
from myna.engine.textprep import Fragment
from myna.engine.voice import Voice
from myna.errors import Cancelled


def render_fragments(synth, fragments: Sequence[tuple[Fragment, Voice]], order: Sequence[int], options: SynthesisOptions,
                     generator: torch.Generator, should_stop: Callable[[], bool] | None = None) -> list[np.ndarray]:
    """Each (fragment, voice)'s audio (as `Synthesizer.decode_tokens` makes it), decoding in `order`, vocoding alongside."""
    audio: list[np.ndarray] = [np.zeros(0, np.float32)] * len(fragments)
    threads = torch.get_num_threads()
    pending: dict[int, Future] = {}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="myna-vocoder")
    try:
        for index in order:
            for future in pending.values():  # a vocoding that failed (or was cancelled) ends the request now
                if future.done():
                    future.result()
            fragment, voice = fragments[index]
            tokens = synth.semantic_tokens_locked(fragment, voice, options, generator, should_stop)
            if tokens.numel() == 0:
                continue
            with torch.inference_mode():
                latent = synth.sovits.prior(tokens, fragment.phone_ids[None], voice.specs, options.noise_scale,
                                            options.speed, voice.sv_embs, generator)
            pending[index] = pool.submit(_vocode, synth, latent, threads, should_stop)
        for index, future in pending.items():
            audio[index] = future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return audio


def _vocode(synth, latent: tuple[torch.Tensor, torch.Tensor, torch.Tensor], threads: int,
            should_stop: Callable[[], bool] | None) -> np.ndarray:
    """Reverse flow and vocoder in this worker thread, with the caller's thread count; peak-limited as decode_tokens."""
    if should_stop is not None and should_stop():
        raise Cancelled("synthesis was cancelled")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)  # this thread's OpenMP setting only: the caller's stays as it is
    with torch.inference_mode():
        wave = synth.sovits.vocode(*latent)
    return synth.limited(wave)
