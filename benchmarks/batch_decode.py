"""Batched vs one-at-a-time T2S decoding on full-size GPT-SoVITS v2 shapes with random weights.

    python benchmarks/batch_decode.py [--tokens 100] [--threads 2] [--repeats 2] [--concurrency 1,2,4,8]
                                      [--precision fp32|bf16|int8]

For each concurrency N, N requests (different texts, prompts and seeds, `--tokens` tokens each,
EOS suppressed) are decoded one after another with `iter_semantic_tokens` and all at once through a
`BatchDecoder` with N slots. Prints aggregate tokens/s of both, the speed-up, the per-request token
rate while batched, and whether every request got the same tokens both ways. Best of `--repeats`.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from fullsize import build_models  # noqa: E402 - full-size random models shared by the engine benchmarks

from myna.engine.batch_decode import BatchDecoder  # noqa: E402
from myna.engine.precision import prepare_gpt  # noqa: E402
from myna.engine.t2s_decode import SamplingParams, iter_semantic_tokens, seeded_generator  # noqa: E402


def make_requests(count: int, tokens: int) -> list[tuple]:
    """(phones, bert, prompt, params, seed, early_stop_num) per request: 60-130 phonemes, 3-5 s prompts."""
    gen = torch.Generator().manual_seed(7)
    requests = []
    for i in range(count):
        text_len, prompt_len = 60 + (37 * i) % 70, 75 + (29 * i) % 50
        phones = torch.randint(0, 732, (1, text_len), generator=gen)
        bert = 0.1 * torch.randn(1, 1024, text_len, generator=gen)
        prompt = torch.randint(0, 1024, (1, prompt_len), generator=gen)
        requests.append((phones, bert, prompt, SamplingParams(), 1000 + i, tokens))
    return requests


def one_at_a_time(gpt, requests: list[tuple]) -> tuple[float, list[list[int]]]:
    start = time.perf_counter()
    out = [list(iter_semantic_tokens(gpt, p, b, pr, sp, seeded_generator(s), early_stop_num=e))
           for p, b, pr, sp, s, e in requests]
    return time.perf_counter() - start, out


def batched(gpt, requests: list[tuple]) -> tuple[float, list[list[int]], list[float]]:
    decoder = BatchDecoder(gpt, slots=len(requests))
    out: list[list[int]] = [[] for _ in requests]
    finished = [0.0] * len(requests)
    start = time.perf_counter()

    def run(i: int) -> None:
        p, b, pr, sp, s, e = requests[i]
        out[i] = list(decoder.iter_tokens(p, b, pr, sp, seeded_generator(s), early_stop_num=e))
        finished[i] = time.perf_counter() - start

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    decoder.close(timeout=10)
    return elapsed, out, finished


def main() -> None:
    """Run the benchmark and print one line per concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100, help="semantic tokens per request")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"), help="GPT mode (default fp32)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gpt, _ = build_models()
    prepare_gpt(gpt, args.precision)
    print(f"threads {args.threads}, {args.precision}, {args.tokens} tokens per request, best of {args.repeats}")
    print(f"{'requests':>8} {'solo tok/s':>11} {'batched tok/s':>14} {'speed-up':>9} {'per-request tok/s':>18} same")
    for count in (int(n) for n in args.concurrency.split(",")):
        requests = make_requests(count, args.tokens)
        solo_time, batch_time, per_request, same = float("inf"), float("inf"), 0.0, True
        for _ in range(args.repeats):
            elapsed, solo_tokens = one_at_a_time(gpt, requests)
            solo_time = min(solo_time, elapsed)
            elapsed, batch_tokens, finished = batched(gpt, requests)
            if elapsed < batch_time:
                batch_time = elapsed
                per_request = sum(len(t) / f for t, f in zip(batch_tokens, finished, strict=True)) / count
            same = same and solo_tokens == batch_tokens
        total = count * args.tokens
        print(f"{count:>8} {total / solo_time:>11.1f} {total / batch_time:>14.1f} {solo_time / batch_time:>8.2f}x "
              f"{per_request:>18.1f} {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
