"""Batched T2S decoding across requests: one GPT, one static KV cache with a row per request.

Continuous batching in the manner of vLLM/gpt-fast: a request (one fragment) joins a free cache row
with its own prefill (alone, so its first logits are the unbatched ones), then every active row
advances together, one ``decode_step`` per step with per-row cache and audio positions. Each row
samples with its own `TokenSampler` (upstream's order and stop rules, the request's own generator)
and leaves when it is done or cancelled; waiting requests join at the next step.

Numerics: attention runs row by row over each row's own filled slots, exactly as alone. The
linear layers run on the whole batch; CPU BLAS computes a row of a one-row product (gemv) with
other rounding than a row of a many-row product, so a batch is never run with fewer than
``min_rows`` rows (idle rows are padding). With MKL, rows of products with >= 4 rows do not depend
on the other rows, so a request's tokens do not depend on what else is in flight (tests check it).
An int8 GPT (myna.engine.precision) quantizes its activations with one scale per call, which would
couple the rows; during batched steps its projections run row by row instead (no padding needed),
so each row gets exactly its one-row result. Where the compiled CPU kernels run the int8 step
(myna.engine.quant_step), the whole batch is one call whose rows are quantized and computed each on
its own: again exactly the one-row result, with the weights read once for all rows.
Against the unbatched path (`iter_semantic_tokens`) logits differ in the last bits; tokens agree
unless a sample falls on a near tie.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from myna.engine.precision import int8_layers
from myna.engine.t2s_decode import MAX_STEPS, SamplingParams, TokenSampler, _check_inputs, decode_steps
from myna.errors import Cancelled, InputError
from myna.models.t2s import KVCache, T2SModel

log = logging.getLogger("myna.engine")

MIN_ROWS = 4  # smallest batch run: keeps every row in the same BLAS regime (see the module docstring)
_START_LEN = 512  # initial cache length; doubled as rows grow


@dataclass(eq=False)
class _Request:
    phones: torch.Tensor
    bert: torch.Tensor
    prompt: torch.Tensor | None
    sampler: TokenSampler
    should_stop: Callable[[], bool] | None
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    prefix_len: int = 0
    prompt_len: int = 0

    def stopped(self) -> bool:
        return self.cancelled.is_set() or (self.should_stop is not None and self.should_stop())

    def position(self) -> int:
        """Cache slot of the token to feed next (the last sample)."""
        return self.prefix_len + self.sampler.step - 1


class BatchDecoder:
    """Decodes up to `slots` sequences at once on `model` (which it then owns) in a thread of its own."""

    def __init__(self, model: T2SModel, slots: int = 4, min_rows: int | None = None):
        self._int8 = int8_layers(model)
        if min_rows is None:  # int8 projections run row by row in batched steps: rows never interact
            min_rows = 1 if self._int8 else MIN_ROWS
        if slots < 1 or min_rows < 1:
            raise InputError(f"batch slots and min_rows must be >= 1 (got {slots}, {min_rows})")
        self.model = model.eval()
        self.slots = slots
        self.min_rows = min_rows
        self._rows: list[_Request | None] = [None] * slots
        self._waiting: deque[_Request] = deque()
        self._lock = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._caches: list[KVCache] = []  # per layer: (max(slots, min_rows), H, length, D)
        self._views: dict[int, list[KVCache]] = {}  # per batch size: caches viewing its first rows
        self.steps = 0  # decode steps run (for tests and benchmarks)
        self.rows_stepped = 0  # sum over steps of active rows

    # -- the caller's side ---------------------------------------------------------------------

    def iter_tokens(
        self,
        phones: torch.Tensor,
        bert: torch.Tensor,
        prompt: torch.Tensor | None,
        params: SamplingParams,
        generator: torch.Generator,
        early_stop_num: int | None = None,
        max_steps: int = MAX_STEPS,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[int]:
        """Yield the tokens `iter_semantic_tokens` would, decoded in the shared batch.

        `should_stop` is polled by the decoding thread every step; once True the row leaves and
        `Cancelled` is raised here. Leaving the iterator early frees the row too.
        """
        _check_inputs(self.model, phones, bert, prompt)
        early_stop_num, _ = decode_steps(self.model, early_stop_num, max_steps)
        config = self.model.config
        sampler = TokenSampler(params, generator, prompt, config.EOS, config.vocab_size, early_stop_num, max_steps,
                               phones.device)
        request = _Request(phones, bert, prompt, sampler, should_stop)
        with self._lock:
            self._waiting.append(request)
            self._start()
            self._lock.notify()
        try:
            while True:
                kind, value = request.out.get()
                if kind == "token":
                    yield value
                elif kind == "end":
                    return
                else:
                    raise value
        finally:
            request.cancelled.set()

    def close(self, timeout: float | None = None) -> None:
        """Let the decoding thread end once idle (a later request starts it again); wait up to `timeout`."""
        with self._lock:
            self._closed = True
            thread = self._thread
            self._lock.notify()
        if thread is not None:
            thread.join(timeout)

    @property
    def active(self) -> int:
        """Rows decoding now."""
        return sum(row is not None for row in self._rows)

    # -- the decoding thread -------------------------------------------------------------------

    def _start(self) -> None:
        """Start the decoding thread unless it runs (after `close` it ends whenever no work is left)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="myna-batch-decoder", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and self.active == 0:
                    if self._closed:
                        self._thread = None
                        return
                    self._lock.wait()
                joining = []
                while self._waiting and len(joining) < self._rows.count(None):
                    joining.append(self._waiting.popleft())
                for request in [r for r in self._waiting if r.stopped()]:
                    self._waiting.remove(request)
                    request.out.put(("error", Cancelled("synthesis was cancelled")))
            try:
                with torch.inference_mode():
                    for request in joining:
                        self._join(request)
                    self._drop_stopped()
                    if self.active:
                        self._step()
            except Exception as exc:  # a bug or out of memory: fail the rows in flight, keep serving
                log.exception("batched decoding failed")
                for index, row in enumerate(self._rows):
                    if row is not None:
                        row.out.put(("error", exc))
                        self._rows[index] = None
                for request in joining:
                    if all(request is not row for row in self._rows):
                        request.out.put(("error", exc))

    def _join(self, request: _Request) -> None:
        """Prefill `request` alone into a free row and sample its first token."""
        if request.stopped():
            request.out.put(("error", Cancelled("synthesis was cancelled")))
            return
        ref_free = request.sampler.ref_free
        request.prompt_len = 0 if ref_free else request.prompt.shape[1]
        request.prefix_len = request.phones.shape[1] + request.prompt_len
        model = self.model
        model.setup_cache(1, request.prefix_len, device=request.phones.device)
        logits = model.prefill(request.phones, request.bert, None if ref_free else request.prompt)
        if not self._emit(request, logits):
            return
        index = self._rows.index(None)
        self._ensure_cache(request.prefix_len)
        for layer, cache in zip(model.h.layers, self._caches, strict=True):
            own = layer.self_attn.kv_cache
            cache.k_cache[index, :, : request.prefix_len] = own.k_cache[0]
            cache.v_cache[index, :, : request.prefix_len] = own.v_cache[0]
        self._rows[index] = request

    def _drop_stopped(self) -> None:
        for index, row in enumerate(self._rows):
            if row is not None and row.stopped():
                row.out.put(("error", Cancelled("synthesis was cancelled")))
                self._rows[index] = None

    def _step(self) -> None:
        """One decode step for every active row, then one sample per row."""
        live = max(i for i, row in enumerate(self._rows) if row is not None) + 1
        batch = max(live, self.min_rows)
        tokens, cache_pos, audio_pos, attend = [0] * batch, [0] * batch, [0] * batch, [1] * batch
        for i, row in enumerate(self._rows):
            if row is not None:
                tokens[i] = int(row.sampler.token[0, 0])
                cache_pos[i] = row.position()
                audio_pos[i] = row.prompt_len + row.sampler.step - 1
                attend[i] = cache_pos[i] + 1
        self._ensure_cache(max(attend))
        device = self._caches[0].k_cache.device
        for layer, cache in zip(self.model.h.layers, self._views_of(batch), strict=True):
            layer.self_attn.kv_cache = cache
        for layer in self._int8:
            layer.per_row = True
        try:
            logits = self.model.decode_step(torch.tensor(tokens, device=device)[:, None],
                                            torch.tensor(cache_pos, device=device),
                                            torch.tensor(audio_pos, device=device), attend_len=attend)
        finally:
            for layer in self._int8:
                layer.per_row = False
        self.steps += 1
        for i, row in enumerate(self._rows):
            if row is not None:
                self.rows_stepped += 1
                if not self._emit(row, logits[i : i + 1]):
                    self._rows[i] = None

    @staticmethod
    def _emit(request: _Request, logits: torch.Tensor) -> bool:
        """Sample the row's next token and post it; False once the row is finished."""
        token, done = request.sampler.sample(logits)
        if token is not None:
            request.out.put(("token", token))
        if done:
            request.out.put(("end", None))
        return not done

    def _ensure_cache(self, length: int) -> None:
        """Grow the shared cache (copying what it holds) to at least `length` slots per row."""
        current = self._caches[0].k_cache.shape[2] if self._caches else 0
        if current >= length:
            return
        own = self.model.h.layers[0].self_attn.kv_cache  # the prefill cache gives dtype and device
        new_len = max(length, 2 * current, _START_LEN)
        rows, heads, dim = max(self.slots, self.min_rows), own.k_cache.shape[1], own.k_cache.shape[3]
        grown = []
        for old in self._caches or [None] * len(self.model.h.layers):
            cache = KVCache(rows, heads, new_len, dim, own.k_cache.dtype, own.k_cache.device)
            if old is not None:
                cache.k_cache[:, :, :current] = old.k_cache
                cache.v_cache[:, :, :current] = old.v_cache
            grown.append(cache)
        self._caches = grown
        self._views = {}

    def _views_of(self, batch: int) -> list[KVCache]:
        """Per-layer caches whose buffers are the first `batch` rows of the shared ones (no copy)."""
        if batch not in self._views:
            views = []
            for cache in self._caches:
                view = KVCache(1, 1, 1, 1, cache.k_cache.dtype, cache.k_cache.device)
                view.k_cache, view.v_cache = cache.k_cache[:batch], cache.v_cache[:batch]
                views.append(view)
            self._views[batch] = views
        return self._views[batch]
