"""Regenerate tests/models/data/t2s_upstream.json and t2s_keys.json with upstream GPT-SoVITS's T2S GPT.

    WORKDIR/venv/bin/python tools/upstream_reference/make_t2s_reference.py WORKDIR [--out DIR]

Builds upstream's `Text2SemanticLightningModule` with the tiny config and the seeded weights of
tests/models/t2s_fixtures.py, then, one thread, for each case of the committed t2s_upstream.json
(its name, whether it has a prompt, sampling options, seed and early-stop count): seeds the global
RNG with `torch.manual_seed(seed)` as `TTS.run` does and decodes with `infer_panel_batch_infer`
(api_v2's default path; without a prompt it falls back to the naive loop). Recorded: the number of
decoding steps (sampler calls), the tokens `TTS.run` passes on (`item[-idx:]`) and, for greedy
cases (top-k 1), the logits the sampler is given at steps 0 and 12 (before it applies the
repetition penalty, 6 decimals). t2s_keys.json: the decoder's state-dict keys and shapes, tiny
and s1longer-v2 full size. To add a case, add its input fields to the committed file and run again.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import upstream

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "models" / "data"
FULL_MODEL = {"vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 512, "hidden_dim": 512, "head": 16,
              "linear_units": 2048, "n_layer": 24, "dropout": 0, "EOS": 1024, "random_bert": 0}  # s1longer-v2.yaml
LOGIT_STEPS = (0, 12)
INPUTS = ("name", "prompt", "top_k", "top_p", "temperature", "seed", "repetition_penalty", "early_stop_num")


def load_fixtures(name: str):
    """A fixture module of tests/models (plain torch: it runs in upstream's environment too)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "models" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(config: dict):
    from AR.models.t2s_lightning_module import Text2SemanticLightningModule

    return Text2SemanticLightningModule(config, "unused", is_train=False).eval()


def run_case(module, fx, case: dict) -> dict:
    """Decode one case the way TTS.run calls the GPT; returns steps, tokens (and logits when greedy)."""
    import torch
    from AR.models import t2s_model

    inputs = fx.tiny_inputs()
    seen: list = []
    sample = t2s_model.sample

    def recording_sample(logits, *args, **kwargs):
        seen.append(logits[0].clone() if len(seen) in LOGIT_STEPS else None)
        return sample(logits, *args, **kwargs)

    t2s_model.sample = recording_sample
    try:
        torch.manual_seed(case["seed"])
        with torch.no_grad():
            tokens, indices = module.model.infer_panel_batch_infer(
                [inputs["phones"][0]], torch.tensor([inputs["phones"].shape[1]]),
                inputs["prompt"] if case["prompt"] else None, [inputs["bert"][0]],
                top_k=case["top_k"], top_p=case["top_p"], temperature=case["temperature"],
                early_stop_num=case["early_stop_num"], max_len=inputs["phones"].shape[1],
                repetition_penalty=case.get("repetition_penalty", 1.35))
    finally:
        t2s_model.sample = sample
    index = indices[0]
    result = {"steps": len(seen), "tokens": tokens[0][-index:].tolist()}
    if case["top_k"] == 1:
        result["logits"] = {str(step): [round(v, 6) for v in seen[step].tolist()]
                            for step in LOGIT_STEPS if step < len(seen)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="upstream workdir (gsv/, venv/, pylib/, nltk_data/)")
    parser.add_argument("--out", type=Path, help="write here instead of over the committed files")
    args = parser.parse_args()
    out = (args.out or DATA).resolve()
    upstream.enter(args.workdir)
    import torch

    torch.set_num_threads(1)
    fx = load_fixtures("t2s_fixtures")
    committed = json.loads((DATA / "t2s_upstream.json").read_text(encoding="utf-8"))
    with upstream.quiet():
        tiny = build({"model": fx.TINY_MODEL, "data": {"max_sec": fx.TINY_MAX_SEC}})
        shapes = {key: tuple(value.shape) for key, value in tiny.model.state_dict().items()}
        tiny.model.load_state_dict(fx.tiny_weights(shapes), strict=True)
        cases = []
        for case in committed["cases"]:
            given = {key: case[key] for key in INPUTS if key in case}
            cases.append({**given, **run_case(tiny, fx, given)})
        with torch.device("meta"):
            full = build({"model": FULL_MODEL, "data": {"max_sec": 54}})
    meta = {"upstream_commit": upstream.UPSTREAM_COMMIT, "torch": torch.__version__, "model": fx.TINY_MODEL,
            "max_sec": fx.TINY_MAX_SEC}
    out.mkdir(parents=True, exist_ok=True)
    (out / "t2s_upstream.json").write_text(json.dumps({"meta": meta, "cases": cases}, separators=(",", ":")))
    keys = {"meta": {"upstream_commit": upstream.UPSTREAM_COMMIT, "prefix_in_ckpt": "model."},
            "full": {k: list(v.shape) for k, v in full.model.state_dict().items()},
            "tiny": {k: list(v) for k, v in shapes.items()}}
    (out / "t2s_keys.json").write_text(json.dumps(keys, indent=1))
    for name in ("t2s_upstream.json", "t2s_keys.json"):
        same = (out / name).read_bytes() == (DATA / name).read_bytes()
        print(f"{out / name}: {'identical to' if same else 'differs from'} the committed file")


if __name__ == "__main__":
    main()
