"""myna against upstream GPT-SoVITS (`TTS.run`, as api_v2 runs it) on the same full-size weights, in one sitting.

    python benchmarks/vs_upstream.py --models DIR --upstream GSV_DIR --upstream-python PYTHON
                                     [--prelude FILE] [--modes fp32,auto] [--tokens 100] [--sentences 4]
                                     [--rounds 3] [--threads 2] [--agreement-steps 200] [--json]

DIR holds gpt.ckpt, sovits.pth, hubert/ and bert/ in upstream's formats (e.g. a random full-size v2 set
made with upstream's classes). GSV_DIR is an upstream checkout (its root, holding GPT_SoVITS/) that
PYTHON (an interpreter with upstream's requirements) can run; upstream's code is imported from there
at run time and never copied. `--prelude FILE`: a Python file with `install()` (run before upstream is
imported, e.g. to set up an offline install: its paths, data folders and stand-ins for downloads) and
optionally `post_import()`; with a prelude, GSV_DIR is left to it.

Both sides get the same files, except that the GPT's logit row for EOS is zeroed in a copy both read,
so that no fragment ends early and both decode exactly `--tokens` tokens per fragment (random weights
otherwise stop at random points). Every system runs in its own long-lived worker process (so each
loads once and its memory is its own); rounds interleave them (the order rotates), and each round runs
a one-sentence text and a `--sentences`-sentence text (English, split at sentence ends, seed 1). The
marginal real-time factor is (long - short) / (audio of long - audio of short): start-up, the
reference prompt and the first fragment's fixed costs cancel. Printed per system: the fastest and
the spread over rounds of the marginal RTF in wall time and in CPU time (all threads; steadier on a
shared machine), GPT tokens/s and SoVITS RTF (summed over fragments, CPU seconds per second of audio
too), the ratio upstream / system, and for myna's fast modes the GPT's teacher-forced top-1 agreement
with fp32 on the same inputs (fp32 tokens fed, argmax compared per step). The CPU model and the load
average before and after are printed: compare only numbers from one sitting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
SENTENCES = [SENTENCE, "Then it runs far away into the quiet forest before night falls.",
             "A small bird sings on a branch high above the sleeping town.", "Nobody knows where the old road ends.",
             "The wind carries the smell of rain across the open fields.", "Every lamp in the house is still burning."]
REF_TEXT = "This is the reference clip, about five seconds of clear speech for the voice we want."


# -- workers (run in their own processes) ----------------------------------------------------------


def _timer(spent: dict, name: str, function, count=None):
    """`function` wrapped to add its wall and CPU seconds (and `count(result)` tokens) to spent[name]."""

    def run(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        entry = spent.setdefault(name, [0.0, 0.0, 0])
        entry[0] += time.perf_counter() - wall
        entry[1] += time.process_time() - cpu
        if count is not None:
            entry[2] += count(result)
        return result

    return run


def upstream_worker(args: argparse.Namespace) -> tuple:
    """Load upstream's TTS on the given files; return (run(text) -> (audio seconds, phase times), spent)."""
    import importlib.util

    prelude = None
    if args.prelude:
        spec = importlib.util.spec_from_file_location("upstream_prelude", args.prelude)
        prelude = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(prelude)
        prelude.install()
    else:
        root = Path(args.upstream).resolve()
        os.chdir(root)  # upstream resolves its configs from its root
        sys.path[:0] = [str(root / "GPT_SoVITS"), str(root)]
    import torch
    import yaml

    torch.set_num_threads(args.threads)
    from TTS_infer_pack.TTS import TTS

    if prelude is not None and hasattr(prelude, "post_import"):
        prelude.post_import()
    folder = Path(tempfile.mkdtemp(prefix="myna-upstream-cfg-"))
    config = folder / "tts_infer.yaml"  # TTS rewrites its config file: give it its own
    config.write_text(yaml.safe_dump({"custom": {
        "device": "cpu", "is_half": False, "version": "v2", "t2s_weights_path": args.gpt,
        "vits_weights_path": str(Path(args.models) / "sovits.pth"), "cnhuhbert_base_path": str(Path(args.models) / "hubert"),
        "bert_base_path": str(Path(args.models) / "bert")}}))
    tts = TTS(str(config))
    tts.configs.max_sec = args.tokens / tts.configs.hz  # early stop after --tokens tokens, as myna's max_tokens
    spent: dict = {}
    model = tts.t2s_model.model
    # TTS.run picks this method per call (parallel_infer); it returns (sequences, tokens decoded per sequence)
    model.infer_panel_batch_infer = _timer(spent, "t2s", model.infer_panel_batch_infer, lambda out: sum(out[1]))
    tts.vits_model.decode = _timer(spent, "sovits", tts.vits_model.decode)

    def run(text: str) -> float:
        inputs = {"text": text, "text_lang": "en", "ref_audio_path": args.ref, "prompt_text": REF_TEXT,
                  "prompt_lang": "en", "top_k": 15, "top_p": 1.0, "temperature": 1.0, "repetition_penalty": 1.35,
                  "speed_factor": 1.0, "seed": 1, "text_split_method": "cut5", "batch_size": 1, "batch_threshold": 0.75,
                  "split_bucket": True, "fragment_interval": 0.3, "parallel_infer": True, "return_fragment": False,
                  "streaming_mode": False, "super_sampling": False, "sample_steps": 32, "aux_ref_audio_paths": []}
        rate, audio = next(tts.run(inputs))
        return len(audio) / rate

    return run, spent


def myna_worker(args: argparse.Namespace) -> tuple:
    """Load myna in `args.worker`'s mode; return (run(text) -> audio seconds, spent, agreement())."""
    import torch

    torch.set_num_threads(args.threads)
    from myna.engine.loading import ModelPaths, load_synthesizer
    from myna.engine.options import SynthesisOptions

    mode, _, variant = args.worker.split(":", 1)[1].partition("+")
    paths = ModelPaths(Path(args.gpt), Path(args.models) / "sovits.pth", Path(args.models) / "hubert",
                       Path(args.models) / "bert")
    synth = load_synthesizer(paths, "cpu", mode, watermark=False)
    synth.pipelined = variant == "pipelined"  # the GPT of fragment i+1 while SoVITS vocodes fragment i
    voice = synth.voice(args.ref, REF_TEXT, "en")
    options = SynthesisOptions(seed=1, split="cut5", max_tokens=args.tokens)
    spent: dict = {}
    synth.semantic_tokens = _timer(spent, "t2s", synth.semantic_tokens, lambda tokens: int(tokens.numel()))
    synth.decode_tokens = _timer(spent, "sovits", synth.decode_tokens)

    def run(text: str) -> float:
        return len(synth.synthesize(text, "en", voice, options)) / synth.sampling_rate

    def agreement() -> float | None:
        return None if mode == "fp32" else teacher_forced_agreement(synth, voice, args)

    return run, spent, agreement


def teacher_forced_agreement(synth, voice, args: argparse.Namespace) -> float:
    """Share of steps where this GPT's argmax is fp32's, fed fp32's sampled tokens (3 seeds, the long text)."""
    import torch

    from myna.engine.loading import load_gpt
    from myna.engine.t2s_decode import SamplingParams, generate_semantic
    from myna.engine.textprep import split_fragments

    reference = load_gpt(args.gpt)
    fragment = split_fragments(" ".join(SENTENCES[:2]), "en", "cut0", synth.version, synth.bert, None)[0]
    phones = torch.cat([voice.prompt.phone_ids, fragment.phone_ids])[None]
    bert = torch.cat([voice.prompt.bert, fragment.bert], dim=1)[None]
    prompt = voice.semantic
    agree = []
    for seed in range(3):
        fed = generate_semantic(reference, phones, bert, prompt, SamplingParams(), torch.Generator().manual_seed(seed),
                                early_stop_num=args.agreement_steps)
        picks = [forced_argmax(model, phones, bert, prompt, fed) for model in (reference, synth.gpt)]
        agree.append(float((picks[0] == picks[1]).float().mean()))
    return sum(agree) / len(agree)


def forced_argmax(model, phones, bert, prompt, tokens):
    """The argmax after the prefix and after each of `tokens` fed in turn: (len(tokens),) long."""
    import torch

    prefix = phones.shape[1] + prompt.shape[1]
    with torch.inference_mode():
        model.setup_cache(1, prefix + tokens.numel())
        logits = model.prefill(phones, bert, prompt)
        best = [int(logits[0].argmax())]
        for step in range(tokens.numel() - 1):
            position = torch.tensor([step])
            logits = model.decode_step(tokens[step].view(1, 1), position + prefix, position + prompt.shape[1],
                                       attend_len=prefix + step + 1)
            best.append(int(logits[0].argmax()))
    return torch.tensor(best)


def worker_main(args: argparse.Namespace) -> None:
    """Serve run/agree commands (one JSON line each) on stdin until it closes."""
    started = time.perf_counter()
    if args.worker == "upstream":
        run, spent = upstream_worker(args)
        agreement = None
    else:
        run, spent, agreement = myna_worker(args)
    print(json.dumps({"ready": time.perf_counter() - started}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "agree":
            print(json.dumps({"agreement": agreement() if agreement else None}), flush=True)
            continue
        spent.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        audio = run(command["text"])
        print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "audio": audio,
                          "spent": spent}), flush=True)


# -- the harness -----------------------------------------------------------------------------------


class Worker:
    """A worker process and its line protocol."""

    def __init__(self, name: str, python: str, args: argparse.Namespace, env: dict) -> None:
        self.name = name
        argv = [python, __file__, "--worker", name, "--models", args.models, "--gpt", args.gpt, "--ref", args.ref,
                "--tokens", str(args.tokens), "--threads", str(args.threads), "--agreement-steps", str(args.agreement_steps)]
        if name == "upstream":
            argv += (["--upstream", args.upstream] if args.upstream else []) + (["--prelude", args.prelude] if args.prelude else [])
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def receive(self) -> dict:
        """The next JSON line from the worker (log lines are skipped)."""
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {self.name} ended (exit {self.process.wait()})")
            if line.startswith("{"):
                return json.loads(line)

    def ask(self, command: dict) -> dict:
        """Send one command and wait for its answer."""
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.receive()

    def close(self) -> None:
        """Close stdin and wait for the worker to end."""
        self.process.stdin.close()
        self.process.wait(timeout=120)


def zeroed_eos_gpt(models: Path, folder: Path) -> Path:
    """A copy of DIR/gpt.ckpt whose EOS logit row is zero (in the file's own layout)."""
    import torch

    checkpoint = torch.load(models / "gpt.ckpt", map_location="cpu", weights_only=False)
    weights = checkpoint["weight"]
    eos = checkpoint["config"]["model"]["EOS"]
    weights["model.ar_predict_layer.weight"][eos] = 0
    target = folder / "gpt.ckpt"
    torch.save(checkpoint, target)
    return target


def cpu_model() -> str:
    """The CPU's model name (lscpu's), with the core count."""
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        return f"{names[0]} x {len(names)}"
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def summarize(samples: list[dict], tokens_per_fragment: int) -> dict:
    """Per-system figures from its rounds: each sample holds that round's short and long runs."""
    def marginal(key: str) -> list[float]:
        return [(s["long"][key] - s["short"][key]) / (s["long"]["audio"] - s["short"]["audio"]) for s in samples]

    def phase(name: str, index: int) -> list[float]:
        return [s["long"]["spent"][name][index] for s in samples if name in s["long"]["spent"]]

    def best(values: list[float]) -> float:
        return min(values) if values else float("nan")  # a phase the run's path does not time (pipelined SoVITS)

    audio = samples[0]["long"]["audio"]
    tokens = samples[0]["long"]["spent"].get("t2s", [0, 0, 0])[2]
    wall, cpu = marginal("wall"), marginal("cpu")
    t2s_wall, t2s_cpu = phase("t2s", 0), phase("t2s", 1)
    sovits_wall, sovits_cpu = phase("sovits", 0), phase("sovits", 1)
    speech = tokens / 25  # seconds of speech the tokens make (25 per second), pauses excluded
    return {"rtf_wall": min(wall), "rtf_wall_spread": max(wall) - min(wall), "rtf_cpu": min(cpu),
            "rtf_cpu_spread": max(cpu) - min(cpu), "t2s_tok_s": tokens / best(t2s_wall), "t2s_tok_s_cpu": tokens / best(t2s_cpu),
            "sovits_rtf": best(sovits_wall) / speech, "sovits_rtf_cpu": best(sovits_cpu) / speech, "audio_long": audio,
            "audio_short": samples[0]["short"]["audio"], "tokens_long": tokens}


def main() -> None:
    """Start the workers, run the interleaved rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="folder with gpt.ckpt, sovits.pth, hubert/, bert/ (upstream's formats)")
    parser.add_argument("--upstream", help="upstream GPT-SoVITS checkout (its root)")
    parser.add_argument("--upstream-python", help="the interpreter upstream runs with")
    parser.add_argument("--prelude", help="Python file with install() (before upstream is imported) and post_import()")
    parser.add_argument("--modes", default="fp32,auto", help="myna precisions, one worker each; MODE+pipelined "
                        "overlaps each fragment's vocoding with the next fragment's GPT (its phase columns then "
                        "count only the GPT)")
    parser.add_argument("--tokens", type=int, default=100, help="semantic tokens per fragment (25 per second)")
    parser.add_argument("--sentences", type=int, default=4, help="sentences in the long text (2-6)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--agreement-steps", type=int, default=200, help="steps per seed for top-1 agreement (0: skip)")
    parser.add_argument("--no-upstream", action="store_true", help="myna's modes only")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--gpt", help=argparse.SUPPRESS)
    parser.add_argument("--ref", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return
    if not args.models or (not args.no_upstream and not (args.upstream_python and (args.upstream or args.prelude))):
        parser.error("--models, and --upstream-python with --upstream or --prelude (or --no-upstream), are needed")
    if not 2 <= args.sentences <= len(SENTENCES):
        parser.error(f"--sentences must be 2..{len(SENTENCES)}")
    sys.path.insert(0, str(Path(__file__).parent))
    from cold_start import write_reference

    work = Path(tempfile.mkdtemp(prefix="myna-vs-upstream-"))
    args.models = str(Path(args.models).resolve())
    args.gpt = str(zeroed_eos_gpt(Path(args.models), work))
    args.ref = str(work / "ref.wav")
    write_reference(Path(args.ref))
    env = dict(os.environ)
    names = ([] if args.no_upstream else ["upstream"]) + [f"myna:{mode}" for mode in args.modes.split(",") if mode]
    load = [Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else "?"]
    workers = {}
    try:
        for name in names:
            python = args.upstream_python if name == "upstream" else sys.executable
            workers[name] = Worker(name, python, args, env)
            workers[name].ready = workers[name].receive()["ready"]
        short, long = SENTENCE, " ".join(SENTENCES[: args.sentences])
        for worker in workers.values():  # warm-up: first-call costs (kernel builds, allocations) stay out
            worker.ask({"cmd": "run", "text": short})
        samples: dict[str, list] = {name: [] for name in workers}
        for round_index in range(args.rounds):
            order = names[round_index % len(names):] + names[: round_index % len(names)]
            for name in order:
                runs = {"short": workers[name].ask({"cmd": "run", "text": short}),
                        "long": workers[name].ask({"cmd": "run", "text": long})}
                samples[name].append(runs)
        agreement = {name: workers[name].ask({"cmd": "agree"})["agreement"] if args.agreement_steps and name != "upstream"
                     else None for name in workers}
    finally:
        for worker in workers.values():
            worker.close()
    load.append(Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else "?")
    rows = []
    for name in names:
        row = {"system": name, **summarize(samples[name], args.tokens), "agreement": agreement[name],
               "load_s": workers[name].ready}
        rows.append(row)
    base = rows[0] if not args.no_upstream else None
    for row in rows:
        row["ratio_wall"] = base["rtf_wall"] / row["rtf_wall"] if base else None
        row["ratio_cpu"] = base["rtf_cpu"] / row["rtf_cpu"] if base else None
    print(f"CPU: {cpu_model()}; torch threads {args.threads}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; "
          f"load average before {' '.join(load[0])}, after {' '.join(load[1])}")
    print(f"short: 1 sentence, long: {args.sentences} sentences, {args.tokens} tokens per fragment; "
          f"audio short {rows[0]['audio_short']:.2f} s, long {rows[0]['audio_long']:.2f} s; best of {args.rounds} rounds "
          "(spread = slowest - fastest)")
    header = ("system", "marginal RTF wall", "(spread)", "RTF CPU", "(spread)", "ratio wall", "ratio CPU", "T2S tok/s",
              "T2S tok/s CPU", "SoVITS RTF", "SoVITS CPU", "agreement", "load s")
    print("  ".join(f"{h:>13}" for h in header))
    for row in rows:
        cells = [row["system"], f"{row['rtf_wall']:.3f}", f"{row['rtf_wall_spread']:.3f}", f"{row['rtf_cpu']:.3f}",
                 f"{row['rtf_cpu_spread']:.3f}", "-" if row["ratio_wall"] is None else f"{row['ratio_wall']:.2f}",
                 "-" if row["ratio_cpu"] is None else f"{row['ratio_cpu']:.2f}", f"{row['t2s_tok_s']:.1f}",
                 f"{row['t2s_tok_s_cpu']:.1f}", f"{row['sovits_rtf']:.3f}", f"{row['sovits_rtf_cpu']:.3f}",
                 "-" if row["agreement"] is None else f"{row['agreement']:.3f}", f"{row['load_s']:.1f}"]
        print("  ".join(f"{c:>13}" for c in cells))
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
