"""Cold start on full-size GPT-SoVITS v2 weights: `myna say` and `myna serve` from process start, per phase.

    python benchmarks/cold_start.py [--models DIR] [--runs 5] [--threads 2] [--tokens 75] [--no-serve]
    python benchmarks/engine.py --cold-start [--models DIR] ...   (the same table after the speed table)

DIR holds gpt.ckpt, sovits.pth, hubert/ and bert/ in upstream's formats (e.g. a random full-size set
made with upstream's classes); without it a random full-size set is written to a temporary folder
first (myna's writers). Every run is a fresh process, with the files in the OS page cache, for a
10-word English sentence with the default precision: `--tokens` semantic tokens (75 = 3 s of speech).

Rows: the phases inside one `myna say` (interpreter start, imports, the models' load and each
part as `load_synthesizer` times it, the reference prompt, T2S, SoVITS, writing the WAV), then the
whole `myna say` command from spawn to exit, then `myna serve` from spawn to its first 200 on /ready.
Each row gives the fastest wall time and the spread (slowest - fastest), and the least CPU time
(all threads; steadier than wall time on a shared machine); the first run of all uses an
empty cache folder (HOME points to a new temporary folder: kernels are compiled, int8 weights
quantized and kept), and is shown apart. The load average is printed: on a shared machine,
compare only numbers taken in one sitting.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TEXT = "The quick brown fox jumps over the lazy dog near home."
REF_TEXT = "This is the reference clip, about five seconds of clear speech for the voice we want."


def write_models(folder: Path) -> None:
    """A random full-size v2 set in upstream's layouts: gpt.ckpt, sovits.pth, hubert/, bert/."""
    import torch
    from safetensors.torch import save_file
    from tokenizers.implementations import BertWordPieceTokenizer

    from myna import checkpoints
    from myna.features.bert_model import BertConfig, BertEncoder
    from myna.features.hubert import Hubert, HubertConfig
    from myna.models.sovits import SoVITS, SoVITSConfig
    from myna.models.t2s import T2SConfig, T2SModel

    sys.path.insert(0, str(Path(__file__).parent))
    from fullsize import FULL_GPT

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    gpt_config = T2SConfig.from_dict({"data": {"max_sec": 54}, "model": FULL_GPT})
    gpt = T2SModel(gpt_config)
    checkpoints.write_gpt(folder / "gpt.ckpt", checkpoints.GPTCheckpoint(gpt_config.to_dict(), gpt.state_dict()))
    sovits_config = SoVITSConfig()
    sovits = SoVITS(sovits_config)
    sovits.quantizer.vq.layers[0]._codebook.embed.normal_(0, 0.25)  # distinct codes
    checkpoints.write_sovits(folder / "sovits.pth", checkpoints.SoVITSCheckpoint(
        "v2", sovits_config.to_dict(), {k: v for k, v in sovits.state_dict().items() if not k.startswith("enc_q.")}))
    hubert_dir, bert_dir = folder / "hubert", folder / "bert"
    hubert_dir.mkdir(exist_ok=True)
    bert_dir.mkdir(exist_ok=True)
    hubert_config = HubertConfig()
    state = Hubert(hubert_config).state_dict()
    kernel = state.pop("encoder.pos_conv_embed.conv.weight")  # stored as weight norm, as transformers does
    state["encoder.pos_conv_embed.conv.weight_v"] = kernel
    state["encoder.pos_conv_embed.conv.weight_g"] = torch.norm_except_dim(kernel, 2, 2)
    save_file({k: v.contiguous() for k, v in state.items()}, hubert_dir / "model.safetensors")
    (hubert_dir / "config.json").write_text(json.dumps({"model_type": "hubert", **vars(hubert_config)}))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(c) for c in range(0x4E00, 0x4E00 + 21123)]
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertWordPieceTokenizer(str(bert_dir / "vocab.txt"))._tokenizer.save(str(bert_dir / "tokenizer.json"))
    bert_config = BertConfig(vocab_size=len(vocab), hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                             intermediate_size=4096)
    bert = BertEncoder(bert_config, layers=bert_config.num_hidden_layers)
    save_file({f"bert.{k}": v.contiguous() for k, v in bert.state_dict().items()}, bert_dir / "model.safetensors")
    (bert_dir / "config.json").write_text(json.dumps(vars(bert_config)))


def write_reference(path: Path) -> None:
    """A 4.5-s voiced-sounding clip (harmonics with vibrato and noise) at 32 kHz."""
    import numpy as np
    import soundfile

    rate, rng = 32000, np.random.default_rng(0)
    t = np.arange(int(4.5 * rate)) / rate
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 0.7 * t)) / rate
    wave = sum(0.25 / k * np.sin(k * phase) for k in range(1, 8)) * (0.6 + 0.4 * np.abs(np.sin(5 * np.pi * t)))
    soundfile.write(path, (wave + 0.01 * rng.standard_normal(t.size)).astype(np.float32), rate)


def say_args(models: Path, ref: Path, tokens: int) -> list[str]:
    """The `myna say` arguments every run uses."""
    return [TEXT, "--lang", "en", "--ref", str(ref), "--ref-text", REF_TEXT, "--ref-lang", "en",
            "--gpt", str(models / "gpt.ckpt"), "--sovits", str(models / "sovits.pth"), "--hubert", str(models / "hubert"),
            "--bert", str(models / "bert"), "--seed", "0", "--max-tokens", str(tokens)]


def child(spawned: float, out: str, argv: list[str]) -> dict[str, list[float]]:
    """One `myna say` in this fresh process, timed per phase (the command's own steps): [wall, CPU] seconds."""
    entered = time.time()
    phases = {"interpreter start": [entered - spawned, time.process_time()]}
    clock = [time.perf_counter(), time.process_time()]

    def phase(name: str, minus: tuple[float, float] = (0.0, 0.0)) -> None:
        now = [time.perf_counter(), time.process_time()]
        phases[name] = [now[0] - clock[0] - minus[0], now[1] - clock[1] - minus[1]]
        clock[:] = now

    import torch  # noqa: F401  (counted in the imports, as the command imports it)

    from myna.audio.io import write_wav
    from myna.cli import build_parser
    from myna.cli.common import model_paths
    from myna.config import Settings
    from myna.engine.loading import load_synthesizer
    from myna.engine.options import SynthesisOptions

    args = build_parser().parse_args(["say", *argv, "-o", out])
    phase("imports")
    synth = load_synthesizer(model_paths(args), args.device, args.precision, Settings.from_env().cpu_kernels)
    phase("load (all models)")
    for part, seconds in synth.load_seconds.items():
        phases[f"  load {part}"] = [seconds, float("nan")]
    voice = synth.voice(args.ref, args.ref_text, args.ref_lang)
    phase("reference prompt")
    spent = {"T2S": [0.0, 0.0], "SoVITS": [0.0, 0.0]}

    def timed(name: str, function):
        def run(*a, **k):
            start = (time.perf_counter(), time.process_time())
            try:
                return function(*a, **k)
            finally:
                spent[name][0] += time.perf_counter() - start[0]
                spent[name][1] += time.process_time() - start[1]
        return run

    synth.semantic_tokens = timed("T2S", synth.semantic_tokens)
    synth.sovits.decode = timed("SoVITS", synth.sovits.decode)
    options = SynthesisOptions(  # as cmd_say builds them
        top_k=args.top_k, top_p=args.top_p, temperature=args.temperature,
        repetition_penalty=args.repetition_penalty, seed=args.seed, speed=args.speed,
        noise_scale=args.noise_scale, split=args.split, pause=args.pause, max_tokens=args.max_tokens,
    )
    audio = synth.synthesize(args.text, args.lang, voice, options)
    phases.update(spent)
    phase("text and the rest", (spent["T2S"][0] + spent["SoVITS"][0], spent["T2S"][1] + spent["SoVITS"][1]))
    write_wav(out, audio, synth.sampling_rate)
    phase("write")
    phases["total (spawn to written)"] = [time.time() - spawned, time.process_time()]
    phases["audio seconds"] = [len(audio) / synth.sampling_rate, 0.0]
    return phases


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_ready(models: Path, env: dict[str, str], timeout: float = 300.0) -> float:
    """Seconds from spawning `myna serve` to its first 200 on /ready (the server is stopped after)."""
    port = _free_port()
    data = tempfile.mkdtemp(prefix="myna-cold-serve-")
    command = [sys.executable, "-m", "myna", "serve", "--port", str(port), "--data-dir", data,
               "--gpt", str(models / "gpt.ckpt"), "--sovits", str(models / "sovits.pth"),
               "--hubert", str(models / "hubert"), "--bert", str(models / "bert")]
    spawned = time.time()
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.time() - spawned < timeout:
            if server.poll() is not None:
                raise RuntimeError(f"myna serve exited: {server.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as reply:
                    if reply.status == 200:
                        return time.time() - spawned
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"myna serve was not ready within {timeout:.0f} s")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(models: Path, runs: int, threads: int, tokens: int, serve: bool) -> tuple[list[dict], dict]:
    """`runs` rounds of (phases of one say, one whole `myna say`, one serve start); the first with empty caches."""
    work = Path(tempfile.mkdtemp(prefix="myna-cold-"))
    ref = work / "ref.wav"
    write_reference(ref)
    env = {**os.environ, "HOME": str(work / "home"), "OMP_NUM_THREADS": str(threads)}
    argv = say_args(models, ref, tokens)
    rounds = []
    for _ in range(runs):
        load = float(Path("/proc/loadavg").read_text().split()[0]) if Path("/proc/loadavg").exists() else float("nan")
        spawned = time.time()
        done = subprocess.run([sys.executable, __file__, "--child", str(spawned), str(work / "a.wav"), *argv],
                              env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("PHASES ")]
        if done.returncode or not lines:
            raise RuntimeError(f"the timed run failed:\n{done.stderr[-3000:]}")
        row = json.loads(lines[-1][7:])
        spawned, cpu = time.time(), _children_cpu()
        done = subprocess.run([sys.executable, "-m", "myna", "say", *argv, "-o", str(work / "b.wav")], env=env,
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"myna say failed:\n{done.stderr[-3000:]}")
        row["myna say (whole command)"] = [time.time() - spawned, _children_cpu() - cpu]
        if serve:
            cpu = _children_cpu()
            row["myna serve ready"] = [serve_ready(models, env), float("nan")]
            row["myna serve ready"][1] = _children_cpu() - cpu  # the server's CPU until stopped right after
        row["load average"] = load
        rounds.append(row)
    return rounds, {"threads": threads, "tokens": tokens}


def print_table(rounds: list[dict], info: dict) -> None:
    """First run (empty caches) apart; later runs as fastest and spread, wall and CPU seconds."""
    later = rounds[1:] or rounds
    print(f"cold start, full-size v2, {info['threads']} threads, {info['tokens']} tokens "
          f"({rounds[0]['audio seconds'][0]:.1f} s of audio); first run with empty caches, then "
          f"{len(later)} later runs; load average {min(r['load average'] for r in rounds):.1f}-"
          f"{max(r['load average'] for r in rounds):.1f} (CPU: all threads' CPU time; a busy host stretches wall time)")
    print(f"{'phase':28s} {'first run':>10s} {'fastest':>9s} {'spread':>8s} {'CPU':>7s}")
    for name in rounds[0]:
        if name in ("audio seconds", "load average"):
            continue
        walls = [r[name][0] for r in later]
        cpus = [r[name][1] for r in later]
        cpu = f"{min(cpus):7.2f}" if cpus and cpus[0] == cpus[0] else f"{'':7s}"  # nan: not measured
        print(f"{name:28s} {rounds[0][name][0]:10.2f} {min(walls):9.2f} {max(walls) - min(walls):8.2f} {cpu}")


def main(argv: list[str] | None = None) -> None:
    """Measure and print the cold-start table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="folder with gpt.ckpt, sovits.pth, hubert/, bert/")
    parser.add_argument("--runs", type=int, default=5, help="fresh-process rounds (the first with empty caches)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=75, help="semantic tokens to speak (25 per second)")
    parser.add_argument("--no-serve", dest="serve", action="store_false", help="skip `myna serve` start-up")
    parser.add_argument("--json", action="store_true", help="also print the rounds as JSON")
    args = parser.parse_args(argv)
    models = args.models
    if models is None:
        models = Path(tempfile.mkdtemp(prefix="myna-cold-models-"))
        print(f"writing a random full-size model set to {models} ...", flush=True)
        write_models(models)
    rounds, info = measure(models, max(args.runs, 1), args.threads, args.tokens, args.serve)
    print_table(rounds, info)
    if args.json:
        print(json.dumps(rounds))


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        print("PHASES " + json.dumps(child(float(sys.argv[2]), sys.argv[3], sys.argv[4:])), flush=True)
    else:
        main()
