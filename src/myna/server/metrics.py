"""Prometheus metrics of one app (its own registry: no process-wide state)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class Metrics:
    """Request counts, latency and first-chunk latency histograms, queue depth, cache hits."""

    def __init__(self, queue_depth: Callable[[], float], busy: Callable[[], float], cache_stats: Callable[[], dict]):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("myna_requests", "HTTP requests answered", ["route", "status"], registry=self.registry)
        self.latency = Histogram("myna_request_seconds", "time to the last byte", ["route"],
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.first_chunk = Histogram("myna_first_chunk_seconds", "time to the first audio chunk", ["route"],
                                     buckets=_LATENCY_BUCKETS, registry=self.registry)
        Gauge("myna_queue_depth", "requests waiting for a worker", registry=self.registry).set_function(queue_depth)
        Gauge("myna_busy_workers", "requests being synthesized", registry=self.registry).set_function(busy)
        for name in ("hits", "misses", "entries"):
            Gauge(f"myna_result_cache_{name}", f"result cache {name}", registry=self.registry).set_function(
                lambda name=name: float(cache_stats().get(name, 0))
            )
