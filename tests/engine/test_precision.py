"""GPT precision modes: fp32 stays exact, bf16/int8 run and agree with fp32, options plumb through."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from myna.config import Settings
from myna.engine.int8_linear import Int8Linear, int8_weight_levels
from myna.engine.loading import load_synthesizer
from myna.engine.precision import (
    Bf16Linear,
    FlatDecodeStep,
    precision_of,
    prepare_gpt,
    resolve_precision,
    use_cuda_graphs,
    use_flat_decode,
)
from myna.engine.t2s_decode import SamplingParams, generate_semantic, seeded_generator
from myna.errors import InputError
from myna.models.t2s import T2SModel

MODELS_TESTS = Path(__file__).parents[1] / "models"
_spec = importlib.util.spec_from_file_location("t2s_fixtures", MODELS_TESTS / "t2s_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)
UPSTREAM = {c["name"]: c for c in json.loads((MODELS_TESTS / "data" / "t2s_upstream.json").read_text())["cases"]}


@pytest.fixture(scope="module")
def fp32() -> T2SModel:
    return fx.tiny_model()


def tokens_of(model: T2SModel, case: str, early_stop_num: int | None = None) -> list[int]:
    spec, inputs = UPSTREAM[case], fx.tiny_inputs()
    params = SamplingParams(top_k=spec["top_k"], top_p=spec["top_p"], temperature=spec["temperature"],
                            repetition_penalty=spec.get("repetition_penalty", 1.35))
    return generate_semantic(model, inputs["phones"], inputs["bert"], inputs["prompt"] if spec["prompt"] else None,
                             params, seeded_generator(spec["seed"]),
                             early_stop_num=early_stop_num or spec["early_stop_num"]).tolist()


def test_fp32_mode_is_untouched_and_exact(fp32: T2SModel) -> None:
    model = prepare_gpt(copy.deepcopy(fp32), "fp32")
    assert precision_of(model) == "fp32" and model.h.layers[0].self_attn.in_proj is None
    assert tokens_of(model, "default_prompt") == UPSTREAM["default_prompt"]["tokens"]


# Tolerances for the tiny 2-layer, 32-wide model (measured: bf16 98% / int8 88-94% teacher-forced top-1, logits
# within 10-11% of their largest value, free-running greedy identical for 30 / 33 tokens). The full-size v2 shapes
# agree better (benchmarks/engine.py): the tiny model's 32-wide activations quantize coarsely.
@pytest.mark.parametrize(("mode", "layer", "min_agree", "rtol"), [("bf16", Bf16Linear, 0.95, 0.15),
                                                                  ("int8", Int8Linear, 0.85, 0.15)])
def test_fast_modes_agree_with_fp32(fp32: T2SModel, mode: str, layer: type, min_agree: float, rtol: float) -> None:
    model = prepare_gpt(copy.deepcopy(fp32), mode)
    assert precision_of(model) == mode
    assert isinstance(model.h.layers[0].linear1, layer) and model.h.layers[0].self_attn.in_proj_weight is None
    reference = UPSTREAM["greedy_prompt"]["tokens"][:50]
    want, got = fx.teacher_forced_logits(fp32, reference), fx.teacher_forced_logits(model, reference)
    assert got.dtype == torch.float32
    # teacher-forced: same prefix every step, top-1 compared (the tiny model has sharp logits)
    assert float((want.argmax(-1) == got.argmax(-1)).float().mean()) >= min_agree
    assert float((want - got).abs().max()) < rtol * float(want.abs().max())
    # free-running greedy decoding stays on fp32's path for a good while (int8 on a CPU without VNNI
    # holds weights in 7 bits, +-63: there the 32-wide model leaves the path after 8 tokens)
    stay = 8 if mode == "int8" and int8_weight_levels() < 127 else 25
    free = tokens_of(model, "greedy_prompt", early_stop_num=stay)
    assert free == reference[:stay]


def test_int8_products_do_not_saturate() -> None:
    """Weights spread up to their channel's maximum (nn.Linear's uniform init) times dense activations:
    pairs of 8-bit products overflow fbgemm's int16 sums on CPUs without VNNI unless the weights are
    kept within +-63 (measured there: 8% error with +-127, 1% with +-63)."""
    torch.manual_seed(0)
    weight = (torch.rand(512, 2048) * 2 - 1) * 0.02
    x = torch.randn(16, 2048)
    want = x @ weight.T
    got = Int8Linear(weight, None)(x)
    assert float((got - want).norm() / want.norm()) < 0.03


def test_int8_fused_relu_gives_relu_of_the_product_alone_and_per_row() -> None:
    torch.manual_seed(1)
    layer = Int8Linear(torch.randn(64, 32) * 0.1, torch.randn(64) * 0.1)
    x = torch.randn(3, 5, 32)
    plain = torch.relu(layer(x))
    assert (plain == 0).any() and (plain > 0).any()
    assert torch.equal(layer.forward_relu(x), plain)
    layer.per_row = True
    rows = layer.forward_relu(x)
    assert torch.equal(rows[1, 2], layer.forward_relu(x[1, 2:3])[0])
    assert torch.equal(rows, torch.relu(layer(x)))


def test_prepare_is_idempotent_but_not_reversible(fp32: T2SModel) -> None:
    model = prepare_gpt(copy.deepcopy(fp32), "int8")
    assert prepare_gpt(model, "int8") is model
    with pytest.raises(InputError, match="load it again"):
        prepare_gpt(model, "bf16")


def test_resolve_precision() -> None:
    assert resolve_precision("auto", "cpu") == "int8"
    assert resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(InputError, match="CUDA"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(InputError, match="unknown precision"):
        resolve_precision("int4", "cpu")


def test_cuda_graphs_are_a_no_op_on_cpu(fp32: T2SModel) -> None:
    model = use_cuda_graphs(copy.deepcopy(fp32))
    assert "decode_step" not in vars(model)
    assert tokens_of(model, "greedy_prompt", early_stop_num=10) == UPSTREAM["greedy_prompt"]["tokens"][:10]


@pytest.mark.parametrize("mode", ["fp32", "bf16", "int8"])
def test_flat_decode_step_gives_the_module_paths_logits_bit_for_bit(fp32: T2SModel, mode: str) -> None:
    module_path = prepare_gpt(copy.deepcopy(fp32), mode)
    flat = use_flat_decode(prepare_gpt(copy.deepcopy(fp32), mode), fused_attention=False)  # see test_cpu_kernels
    assert "decode_step" in vars(flat)
    tokens = UPSTREAM["greedy_prompt"]["tokens"][:30]
    assert torch.equal(fx.teacher_forced_logits(flat, tokens), fx.teacher_forced_logits(module_path, tokens))
    assert tokens_of(flat, "default_prompt") == tokens_of(module_path, "default_prompt")
    assert vars(flat)["decode_step"].built_for == mode  # the flat loop ran: it builds on its first call


@pytest.fixture
def kernel_calls(monkeypatch) -> list[int]:
    """Counts calls of the C attention kernel (one entry per call: its slot); skips where none builds."""
    from myna.engine import cpu_kernels

    if cpu_kernels._compiler() is None:
        pytest.skip("no C compiler here: the decode step uses torch's attention")
    calls: list[int] = []
    real = cpu_kernels.CpuKernels.bind_attention

    def counted_binding(self, k_cache, v_cache, out, scratch):
        attend = real(self, k_cache, v_cache, out, scratch)

        def counted(qkv, slot):
            calls.append(slot)
            return attend(qkv, slot)

        return counted

    monkeypatch.setattr(cpu_kernels.CpuKernels, "bind_attention", counted_binding)
    return calls


@pytest.mark.parametrize("mode", ["bf16"])  # int8 runs its whole step in C: tests/engine/test_quant_step.py
def test_fused_attention_decodes_as_the_module_path_does(fp32: T2SModel, mode: str, kernel_calls: list[int]) -> None:
    module_path = prepare_gpt(copy.deepcopy(fp32), mode)
    fused = use_flat_decode(prepare_gpt(copy.deepcopy(fp32), mode))
    tokens = list(range(5, 35))
    got, expected = fx.teacher_forced_logits(fused, tokens), fx.teacher_forced_logits(module_path, tokens)
    layers = len(fused.h.layers)
    assert len(kernel_calls) == layers * (len(tokens) - 1)  # every step of every layer ran the kernel
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))
    assert tokens_of(fused, "default_prompt") == tokens_of(module_path, "default_prompt")


@torch.inference_mode()
def test_a_step_that_attends_short_of_its_slot_takes_torchs_attention(fp32: T2SModel, kernel_calls: list[int]) -> None:
    fused, module_path = use_flat_decode(prepare_gpt(copy.deepcopy(fp32), "int8")), prepare_gpt(copy.deepcopy(fp32), "int8")
    module_path.kv_dtype = fused.kv_dtype  # the same cache (half floats for the int8 C step)
    fx.teacher_forced_logits(fused, [1, 2, 3]), fx.teacher_forced_logits(module_path, [1, 2, 3])  # fill both caches alike
    kernel_calls.clear()
    args = (torch.tensor([[4]]), torch.tensor([40]), torch.tensor([2]))
    got = fused.decode_step(*args, attend_len=30)  # slot 40, but only the first 30 slots attended
    assert kernel_calls == []
    assert torch.equal(got, module_path.decode_step(*args, attend_len=30))


def test_fp32_and_an_opt_out_keep_torch_attention(fp32: T2SModel) -> None:
    exact = use_flat_decode(copy.deepcopy(fp32))
    fx.teacher_forced_logits(exact, [1, 2, 3])
    assert vars(exact)["decode_step"].kernels is None  # fp32 stays upstream's numbers
    plain = use_flat_decode(prepare_gpt(copy.deepcopy(fp32), "int8"), fused_attention=False)
    fx.teacher_forced_logits(plain, [1, 2, 3])
    step = vars(plain)["decode_step"]
    assert isinstance(step, FlatDecodeStep) and step.kernels is None and step.built_for == "int8"


def test_flat_decode_step_follows_a_later_precision_change_and_leaves_other_calls_to_the_modules(fp32: T2SModel) -> None:
    model = use_flat_decode(copy.deepcopy(fp32), fused_attention=False)  # bit for bit, int8 included
    tokens = UPSTREAM["greedy_prompt"]["tokens"][:12]
    assert torch.equal(fx.teacher_forced_logits(model, tokens), fx.teacher_forced_logits(fp32, tokens))
    with torch.no_grad():  # new weights after the first flattened steps are used as they are
        for layer in model.h.layers:
            layer.norm2.weight.mul_(1.5)
            layer.self_attn.in_proj_weight.mul_(0.5)
    changed = copy.deepcopy(model)
    del changed.decode_step  # the module path
    assert torch.equal(fx.teacher_forced_logits(model, tokens), fx.teacher_forced_logits(changed, tokens))
    assert not torch.equal(fx.teacher_forced_logits(model, tokens), fx.teacher_forced_logits(fp32, tokens))
    prepare_gpt(model, "int8")  # after the first steps were flattened in fp32
    assert torch.equal(fx.teacher_forced_logits(model, tokens), fx.teacher_forced_logits(prepare_gpt(changed, "int8"), tokens))
    # the masked fixed-shape call (no attend_len) takes the module path, with its checks
    model.h.layers[0].self_attn.kv_cache = None
    with pytest.raises(RuntimeError, match="KV cache missing"), torch.inference_mode():
        model.decode_step(torch.tensor([[1]]), torch.tensor([0]), torch.tensor([0]))


def test_the_cpu_kernels_switch_reaches_the_decode_step(tiny_set: dict) -> None:
    from myna.engine.cpu_kernels import _compiler
    from myna.engine.loading import ModelPaths

    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"])
    for switch in (True, False):
        gpt = load_synthesizer(paths, "cpu", "int8", cpu_kernels=switch).gpt
        fx.teacher_forced_logits(gpt, [1, 2, 3])  # the step binds its kernels on its first call
        assert (vars(gpt)["decode_step"].kernels is not None) == (switch and _compiler() is not None)
    assert Settings.from_env({}).cpu_kernels is True
    assert Settings.from_env({"MYNA_CPU_KERNELS": "0"}).cpu_kernels is False
    assert Settings.from_env({"MYNA_CPU_KERNELS": " Yes "}).cpu_kernels is True
    with pytest.raises(InputError, match="MYNA_CPU_KERNELS"):
        Settings.from_env({"MYNA_CPU_KERNELS": "maybe"})


def test_load_synthesizer_and_settings_take_a_precision(tiny_set: dict) -> None:
    from myna.engine.loading import ModelPaths

    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"])
    synth = load_synthesizer(paths, "cpu", "int8")
    assert precision_of(synth.gpt) == "int8"
    assert type(vars(synth.gpt)["decode_step"]).__name__ == "FlatDecodeStep"
    assert Settings.from_env({"MYNA_PRECISION": "bf16"}).precision == "bf16"
    assert Settings.from_env({}).precision == "auto"
    with pytest.raises(InputError, match="precision"):
        Settings.from_env({"MYNA_PRECISION": "fast"})
