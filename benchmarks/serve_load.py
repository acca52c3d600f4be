"""Load on a running `myna serve`: N concurrent clients on loopback for a bounded time and request count.

    python benchmarks/serve_load.py --url http://127.0.0.1:9880 --ref ref.wav --prompt-text "..." \
        [--clients 8] [--duration 30] [--max-requests 200] [--text "..."] [--lang en] [--api-key KEY]
    python benchmarks/serve_load.py --url ... --voice VOICE_ID_OR_NAME     (OpenAI /v1/audio/speech)

Each client sends streamed requests back to back (fixed seeds, cache bypassed). Prints throughput,
p50/p95 latency to the last byte and to the first audio byte, and the count of each status.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter

import httpx


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values by the nearest-rank rule; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def request_of(args: argparse.Namespace, number: int) -> tuple[str, dict]:
    """(path, JSON body) of the n-th request."""
    if args.voice:
        return "/v1/audio/speech", {"input": args.text, "voice": args.voice, "response_format": "pcm",
                                    "seed": number % 8, "language": args.lang}
    return "/tts", {"text": args.text, "text_lang": args.lang, "ref_audio_path": args.ref, "prompt_text": args.prompt_text,
                    "prompt_lang": args.prompt_lang, "seed": number % 8, "streaming_mode": True, "media_type": "raw"}


async def client_loop(client: httpx.AsyncClient, args, deadline: float, counter: list[int], results: list) -> None:
    """Send requests until the deadline or the request budget is used up."""
    while time.monotonic() < deadline and counter[0] < args.max_requests:
        number = counter[0]
        counter[0] += 1
        path, body = request_of(args, number)
        started = time.monotonic()
        first = None
        size = 0
        try:
            async with client.stream("POST", path, json=body) as response:
                async for piece in response.aiter_raw():
                    if first is None and piece:
                        first = time.monotonic() - started
                    size += len(piece)
                status = response.status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        results.append((status, time.monotonic() - started, first, size))


async def run(args: argparse.Namespace) -> list:
    """Run the load and return (status, latency, first-chunk latency, bytes) per request."""
    headers = {"Cache-Control": "no-cache"}
    if args.api_key:
        headers["Authorization"] = f"Bearer {args.api_key}"
    results: list = []
    counter = [0]
    limits = httpx.Limits(max_connections=args.clients)
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=args.timeout, limits=limits) as client:
        deadline = time.monotonic() + args.duration
        await asyncio.gather(*(client_loop(client, args, deadline, counter, results) for _ in range(args.clients)))
    return results


def main() -> None:
    """Parse the arguments, run the load, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:9880")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds during which new requests start")
    parser.add_argument("--max-requests", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--text", default="The quick brown fox jumps over the lazy dog. Then it runs away.")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--voice", help="registered voice: load /v1/audio/speech instead of /tts")
    parser.add_argument("--ref", default="ref.wav", help="/tts: reference clip inside the server's --ref-dir")
    parser.add_argument("--prompt-text", default="This is my reference voice.")
    parser.add_argument("--prompt-lang", default="en")
    parser.add_argument("--api-key")
    args = parser.parse_args()
    started = time.monotonic()
    results = asyncio.run(run(args))
    elapsed = time.monotonic() - started
    ok = [r for r in results if r[0] == 200]
    latencies = [r[1] for r in ok]
    firsts = [r[2] for r in ok if r[2] is not None]
    print(f"requests           {len(results)} in {elapsed:.1f} s with {args.clients} clients")
    print(f"throughput_rps     {len(ok) / elapsed:.3f}")
    print(f"latency_p50_s      {percentile(latencies, 0.5):.3f}")
    print(f"latency_p95_s      {percentile(latencies, 0.95):.3f}")
    print(f"first_chunk_p50_s  {percentile(firsts, 0.5):.3f}")
    print(f"first_chunk_p95_s  {percentile(firsts, 0.95):.3f}")
    print(f"mean_bytes         {statistics.fmean([r[3] for r in ok]) if ok else 0:.0f}")
    print("statuses           " + ", ".join(f"{k}: {v}" for k, v in sorted(Counter(map(str, (r[0] for r in results))).items())))


if __name__ == "__main__":
    main()
