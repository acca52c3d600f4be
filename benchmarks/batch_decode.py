"""Batched vs one-at-a-time T2S decoding on full-size GPT-SoVITS v2 shapes with random weights.

    python benchmarks/batch_decode.py [--tokens 100] [--threads 2] [--repeats 2] [--concurrency 1,2,4,8]
                                      [--precision fp32|bf16|int8] [--module-path]
    python benchmarks/batch_decode.py --end-to-end [--precision int8] [--concurrency 1,4] [--tokens 100]

For each concurrency N, N requests (different texts, prompts and seeds, `--tokens` tokens each,
EOS suppressed) are decoded one after another with `iter_semantic_tokens` and all at once through a
`BatchDecoder` with N slots. Prints aggregate tokens/s of both, the speed-up, the per-request token
rate while batched, and whether every request got the same tokens both ways. Best of `--repeats`;
the CPU columns are CPU seconds (all threads) turned into tokens per CPU second, steadier than wall
time on a shared machine. The GPT decodes as the engine loads it (`use_flat_decode`: for int8 the
whole step in one C call, batches included); `--module-path` measures torch's module path instead.

`--end-to-end` adds the SoVITS stage (as the engine prepares it for the GPT's precision): one at a
time, each request decodes its tokens and then vocodes them; concurrently, N threads share the
batched GPT and each vocodes its own tokens, as `myna serve --batch-size N` runs them. It prints audio
seconds per wall second both ways and the ratio, once with every thread at `--threads` intra-op
threads and once with the worker threads sharing them (`split`: each vocodes with threads / N, at
least 1), the serve workers' rule.
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

from myna.audio.spectrogram import linear_spectrogram  # noqa: E402
from myna.engine.batch_decode import BatchDecoder  # noqa: E402
from myna.engine.precision import prepare_gpt, use_flat_decode  # noqa: E402
from myna.engine.sovits_fast import fast_cpu_mode, prepare_sovits  # noqa: E402
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


def one_at_a_time(gpt, requests: list[tuple]) -> tuple[float, list[list[int]], float]:
    start, cpu = time.perf_counter(), time.process_time()
    out = [list(iter_semantic_tokens(gpt, p, b, pr, sp, seeded_generator(s), early_stop_num=e))
           for p, b, pr, sp, s, e in requests]
    return time.perf_counter() - start, out, time.process_time() - cpu


def in_threads(run, count: int) -> None:
    """run(0) ... run(count - 1), each in its own thread (as concurrent requests), and wait for all."""
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def batched(gpt, requests: list[tuple]) -> tuple[float, list[list[int]], list[float], float]:
    decoder = BatchDecoder(gpt, slots=len(requests))
    out: list[list[int]] = [[] for _ in requests]
    finished = [0.0] * len(requests)
    start, cpu = time.perf_counter(), time.process_time()

    def run(i: int) -> None:
        p, b, pr, sp, s, e = requests[i]
        out[i] = list(decoder.iter_tokens(p, b, pr, sp, seeded_generator(s), early_stop_num=e))
        finished[i] = time.perf_counter() - start

    in_threads(run, len(requests))
    elapsed, spent = time.perf_counter() - start, time.process_time() - cpu
    decoder.close(timeout=10)
    return elapsed, out, finished, spent


def vocode(sovits, request: tuple, tokens: list[int], spec: torch.Tensor, threads: int | None) -> float:
    """Seconds of audio SoVITS makes from one request's tokens (its phonemes, the shared reference)."""
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)  # this thread's OpenMP setting only
    with torch.inference_mode():
        wave = sovits.decode(torch.tensor(tokens), request[0][0], spec, generator=seeded_generator(request[4]))
    return wave.shape[-1] / sovits.config.sampling_rate


def end_to_end(gpt, sovits, requests: list[tuple], spec: torch.Tensor, threads: int, split: bool,
               concurrent: bool) -> tuple[float, float, float]:
    """(audio seconds, wall seconds, CPU seconds) for `requests` one at a time or concurrently (batched GPT)."""
    start, cpu = time.perf_counter(), time.process_time()
    if not concurrent:
        audio = 0.0
        for request in requests:
            p, b, pr, sp, s, e = request
            tokens = list(iter_semantic_tokens(gpt, p, b, pr, sp, seeded_generator(s), early_stop_num=e))
            audio += vocode(sovits, request, tokens, spec, threads)
        return audio, time.perf_counter() - start, time.process_time() - cpu
    decoder = BatchDecoder(gpt, slots=len(requests))
    seconds = [0.0] * len(requests)
    worker_threads = max(1, threads // len(requests)) if split else threads

    def run(i: int) -> None:
        p, b, pr, sp, s, e = requests[i]
        tokens = list(decoder.iter_tokens(p, b, pr, sp, seeded_generator(s), early_stop_num=e))
        seconds[i] = vocode(sovits, requests[i], tokens, spec, worker_threads)

    in_threads(run, len(requests))
    elapsed, spent = time.perf_counter() - start, time.process_time() - cpu
    decoder.close(timeout=10)
    return sum(seconds), elapsed, spent


def main_end_to_end(args: argparse.Namespace, gpt, sovits) -> None:
    """Audio seconds per wall second, one at a time against concurrent, per concurrency."""
    prepare_sovits(sovits, fast_cpu_mode() if args.precision != "fp32" else "exact")
    spec = linear_spectrogram(0.1 * torch.randn(1, 4 * sovits.config.sampling_rate, generator=torch.Generator().manual_seed(3)))
    end_to_end(gpt, sovits, make_requests(2, 10), spec, args.threads, False, concurrent=True)  # warm-up
    print(f"{'requests':>8} {'threads':>8} {'solo audio s/s':>15} {'concurrent audio s/s':>21} {'ratio':>6} "
          f"{'solo CPU s/audio s':>19} {'concurrent CPU s/audio s':>25}")
    for count in (int(n) for n in args.concurrency.split(",")):
        requests = make_requests(count, args.tokens)
        for split in ((False, True) if count > 1 else (False,)):
            solo, together = (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
            for _ in range(args.repeats):  # interleaved, best of each
                run = end_to_end(gpt, sovits, requests, spec, args.threads, split, concurrent=False)
                solo = run if not solo[1] or run[1] < solo[1] else solo
                run = end_to_end(gpt, sovits, requests, spec, args.threads, split, concurrent=True)
                together = run if not together[1] or run[1] < together[1] else together
            label = f"{max(1, args.threads // count)} each" if split else str(args.threads)
            print(f"{count:>8} {label:>8} {solo[0] / solo[1]:>15.2f} {together[0] / together[1]:>21.2f} "
                  f"{solo[1] / together[1] * together[0] / solo[0]:>5.2f}x {solo[2] / solo[0]:>19.3f} "
                  f"{together[2] / together[0]:>25.3f}")


def main() -> None:
    """Run the benchmark and print one line per concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100, help="semantic tokens per request")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"), help="GPT mode (default fp32)")
    parser.add_argument("--module-path", action="store_true", help="torch's module path, not the engine's decode step")
    parser.add_argument("--end-to-end", action="store_true", help="tokens and SoVITS: audio seconds per wall second")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gpt, sovits = build_models()
    prepare_gpt(gpt, args.precision)
    if not args.module_path:
        use_flat_decode(gpt)
    if args.end_to_end:
        print(f"threads {args.threads}, GPT {args.precision}, {args.tokens} tokens per request, best of {args.repeats}")
        main_end_to_end(args, gpt, sovits)
        return
    print(f"threads {args.threads}, {args.precision}{' (module path)' if args.module_path else ''}, "
          f"{args.tokens} tokens per request, best of {args.repeats}")
    print(f"{'requests':>8} {'solo tok/s':>11} {'batched tok/s':>14} {'speed-up':>9} {'per-request tok/s':>18} "
          f"{'solo tok/CPU s':>15} {'batched tok/CPU s':>18} same")
    for count in (int(n) for n in args.concurrency.split(",")):
        requests = make_requests(count, args.tokens)
        solo_time, batch_time, solo_cpu, batch_cpu = float("inf"), float("inf"), float("inf"), float("inf")
        per_request, same = 0.0, True
        for _ in range(args.repeats):
            elapsed, solo_tokens, spent = one_at_a_time(gpt, requests)
            solo_time, solo_cpu = min(solo_time, elapsed), min(solo_cpu, spent)
            elapsed, batch_tokens, finished, spent = batched(gpt, requests)
            batch_cpu = min(batch_cpu, spent)
            if elapsed < batch_time:
                batch_time = elapsed
                per_request = sum(len(t) / f for t, f in zip(batch_tokens, finished, strict=True)) / count
            same = same and solo_tokens == batch_tokens
        total = count * args.tokens
        print(f"{count:>8} {total / solo_time:>11.1f} {total / batch_time:>14.1f} {solo_time / batch_time:>8.2f}x "
              f"{per_request:>18.1f} {total / solo_cpu:>15.1f} {total / batch_cpu:>18.1f} {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
