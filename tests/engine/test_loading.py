"""Loading: models built without random init hold exactly the file's weights; what loads when, and how long."""

from __future__ import annotations

import threading

import torch

from myna import checkpoints
from myna.engine import loading
from myna.engine.loading import ModelPaths, load_gpt, load_sovits, load_synthesizer
from myna.models.sovits import SoVITS, SoVITSConfig
from myna.models.t2s import T2SConfig, T2SModel


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def test_models_equal_the_plainly_built_ones(tiny_set: dict) -> None:
    gpt_file, sovits_file = checkpoints.read_gpt(tiny_set["gpt"]), checkpoints.read_sovits(tiny_set["sovits"])
    plain_gpt = T2SModel(T2SConfig.from_dict(gpt_file.config))
    plain_gpt.load_state_dict({k: v.float() for k, v in gpt_file.state_dict.items()})
    plain_sovits = SoVITS(SoVITSConfig.from_dict(sovits_file.config, version=sovits_file.version))
    plain_sovits.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sovits_file.state_dict.items()})
    gpt, sovits = load_gpt(tiny_set["gpt"]), load_sovits(tiny_set["sovits"])
    assert _same_state(gpt, plain_gpt) and _same_state(sovits, plain_sovits)
    # buffers that are not in the file (the sine position tables) are computed as usual
    assert torch.equal(gpt.ar_text_position.table, plain_gpt.ar_text_position.table)


def test_skipping_init_stays_in_its_own_thread() -> None:
    started, done = threading.Event(), threading.Event()
    built = {}

    def other_thread() -> None:
        started.wait()
        torch.manual_seed(0)
        built["other"] = torch.nn.Linear(64, 64)
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with loading._SkipInit():
        started.set()
        done.wait(timeout=30)
        built["here"] = torch.nn.Linear(64, 64)
    thread.join()
    torch.manual_seed(0)
    assert torch.equal(built["other"].weight, torch.nn.Linear(64, 64).weight)  # initialised as usual
    torch.manual_seed(0)
    assert not torch.equal(built["here"].weight, torch.nn.Linear(64, 64).weight)  # left as allocated


def test_load_times_are_recorded_and_the_bert_waits_for_chinese(tiny_set: dict) -> None:
    synth = load_synthesizer(ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"]),
                             precision="fp32")
    assert {"GPT", "SoVITS", "content encoder", "BERT"} <= set(synth.load_seconds)
    assert all(seconds >= 0 for seconds in synth.load_seconds.values())
    assert not synth.bert.loaded
    voice = synth.voice(tiny_set["clips"][0], "Hello there, this is the reference.", "en")
    synth.synthesize("Good morning.", "en", voice)
    assert not synth.bert.loaded  # English never reads it
    synth.synthesize("你好。", "zh", voice)
    assert synth.bert.loaded
