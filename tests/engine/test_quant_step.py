"""The int8 decode step in C: fbgemm's numbers, rows independent of their batch, and the module path where it cannot run."""

from __future__ import annotations

import copy
import ctypes
import importlib.util
import platform
import subprocess
import threading
from pathlib import Path

import pytest
import torch

from myna.engine import cpu_kernels, quant_step
from myna.engine.batch_decode import BatchDecoder
from myna.engine.int8_linear import Int8Linear, int8_weight_levels
from myna.engine.precision import prepare_gpt, use_flat_decode
from myna.engine.t2s_decode import SamplingParams, generate_semantic, iter_semantic_tokens, seeded_generator
from myna.models.t2s import T2SModel

_spec = importlib.util.spec_from_file_location("t2s_fixtures", Path(__file__).parents[1] / "models" / "t2s_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

pytestmark = pytest.mark.skipif("x86" not in torch.backends.quantized.supported_engines
                                and "fbgemm" not in torch.backends.quantized.supported_engines,
                                reason="no x86/fbgemm int8 kernels in this torch")


@pytest.fixture(scope="module")
def lib():
    loaded = quant_step.kernels()
    if loaded is None:
        pytest.skip("no C compiler here: the int8 step runs through torch")
    return loaded


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny() -> T2SModel:
    return fx.tiny_model()


def test_the_vector_path_is_compiled_in_where_the_cpu_has_avx512_vnni(lib) -> None:
    # so that the portable-loop comparisons here compare two different loops on such CPUs
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    if not {"avx512f", "avx512bw", "avx512_vnni"} <= flags:
        pytest.skip("no AVX-512 VNNI here: the portable loop is the only one")
    assert lib.library.myna_quant_simd() == 512


def test_a_build_for_a_cpu_without_avx512_gives_the_same_floats(lib, tmp_path: Path) -> None:
    # what a CI machine without AVX-512 compiles (-march=native leaves the vector path out there)
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86 only")
    compiler = cpu_kernels._compiler()
    flags = cpu_kernels._flags(subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout)
    target = tmp_path / "portable.so"
    done = subprocess.run([compiler, *flags, "-mno-avx512f", *map(str, cpu_kernels.SOURCES), "-o",
                           str(target), "-lm"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    portable = cpu_kernels.CpuKernels(ctypes.CDLL(str(target)), target)
    quant_step._functions(portable.library)
    assert portable.library.myna_quant_simd() == 0
    gen = torch.Generator().manual_seed(11)
    layer = Int8Linear(torch.randn(1040, 512, generator=gen) * 0.05, torch.randn(1040, generator=gen))
    packed, x = quant_step.Packed.of(layer), torch.randn(6, 512, generator=gen)
    assert torch.equal(packed(x, lib=portable), packed(x, lib=lib))
    assert torch.equal(packed(x, relu=True, lib=portable), packed(x, relu=True, lib=lib))


def test_without_a_c_compiler_the_int8_step_runs_through_torch(tiny: T2SModel, tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no cc, gcc or clang
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # and no library built earlier
    cpu_kernels.load_kernels.cache_clear()
    try:
        assert quant_step.kernels() is None
        fallback = use_flat_decode(prepare_gpt(copy.deepcopy(tiny), "int8"))
        tokens = list(range(5, 25))
        got = fx.teacher_forced_logits(fallback, tokens)
        assert vars(fallback)["decode_step"].quantized is None and vars(fallback)["decode_step"].kernels is None
    finally:
        cpu_kernels.load_kernels.cache_clear()  # later tests build (or find) the real library again
    expected = fx.teacher_forced_logits(prepare_gpt(copy.deepcopy(tiny), "int8"), tokens)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5) and torch.equal(got.argmax(-1), expected.argmax(-1))


def reference_product(layer: Int8Linear, x: torch.Tensor) -> torch.Tensor:
    """The kernel's arithmetic in float64: rows to bytes with a zero point over [min(x, 0), max(x, 0)], int8 weights."""
    values, scales, bias = layer.quantized()
    low, high = x.amin(-1, keepdim=True).clamp_max(0), x.amax(-1, keepdim=True).clamp_min(0)
    step = ((high - low) / 255).clamp_min(1e-30)
    zero = torch.round(-low / step).clamp(0, 255)
    quantized = (torch.round(x / step) + zero).clamp(0, 255)
    product = (quantized - zero).double() @ values.double().T
    return product * step.double() * scales.double() + (0 if bias is None else bias.double())


@pytest.mark.parametrize(("rows", "out_features", "in_features"), [(1, 1536, 512), (3, 1025, 512), (7, 40, 2048),
                                                                   (5, 16, 4)])
def test_packed_product_is_the_int8_layers_product(lib, rows: int, out_features: int, in_features: int) -> None:
    gen = torch.Generator().manual_seed(rows)
    layer = Int8Linear(torch.randn(out_features, in_features, generator=gen) * 0.05,
                       torch.randn(out_features, generator=gen))
    x = torch.randn(rows, in_features, generator=gen)
    x[0, :3] = 0.0
    packed = quant_step.Packed.of(layer)
    got = packed(x, lib=lib)
    scale = float(got.abs().max())
    assert float((got.double() - reference_product(layer, x)).abs().max()) < 1e-5 * scale
    layer.per_row = True  # fbgemm's dynamic quantization, a row at a time: the same numbers
    assert float((got - layer(x)).abs().max()) < 1e-4 * scale
    assert torch.equal(packed(x, relu=True, lib=lib), torch.relu(got))
    lib.library.myna_quant_force_portable(1)
    try:  # the portable loop (CPUs without AVX-512 VNNI) gives the same floats
        assert torch.equal(packed(x, lib=lib), got)
    finally:
        lib.library.myna_quant_force_portable(0)
    assert torch.equal(packed(x[1:2], lib=lib)[0] if rows > 1 else got[0], got[1] if rows > 1 else got[0])


def test_the_c_step_decodes_as_the_module_path(tiny: T2SModel, lib) -> None:
    module_path = prepare_gpt(copy.deepcopy(tiny), "int8")
    fast = use_flat_decode(prepare_gpt(copy.deepcopy(tiny), "int8"))
    module_path.kv_dtype = fast.kv_dtype  # torch's attention over the same (half-float) cache
    tokens = list(range(5, 45))
    got, expected = fx.teacher_forced_logits(fast, tokens), fx.teacher_forced_logits(module_path, tokens)
    assert isinstance(vars(fast)["decode_step"].quantized, quant_step.QuantDecodeStep)  # the C step ran
    if int8_weight_levels() == 127:  # AVX-512 VNNI: fbgemm's kernels round their floats as the C step does
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4)
    else:
        # Without VNNI, fbgemm's kernels round a layer's float outputs apart from the C step's fused
        # multiply-add (1 ulp in ~1 of 6 outputs), and now and then such an ulp moves one activation byte of the next
        # layer by one step: the same numbers but at a rare position, off by a fraction of a percent there.
        close = torch.isclose(got, expected, rtol=1e-4, atol=1e-4).all(-1)
        assert float(close.float().mean()) >= 0.9
        assert float((got - expected).abs().max()) <= 0.02 * float(expected.abs().max())
    assert torch.equal(got.argmax(-1), expected.argmax(-1))
    lib.library.myna_quant_force_portable(1)
    try:  # the whole step on the portable loop (CPUs without AVX-512 VNNI): the same floats
        assert torch.equal(fx.teacher_forced_logits(fast, tokens), got)
    finally:
        lib.library.myna_quant_force_portable(0)
    inputs, params = fx.tiny_inputs(), SamplingParams(top_k=5)
    runs = [generate_semantic(m, inputs["phones"], inputs["bert"], inputs["prompt"], params, seeded_generator(4),
                              early_stop_num=40).tolist() for m in (fast, module_path)]
    assert runs[0] == runs[1] and len(runs[0]) > 10
    # fp32's top-1 token, fed fp32's path: as often as the int8 module path (test_precision measures that)
    fp32 = fx.teacher_forced_logits(tiny, tokens).argmax(-1)
    assert float((got.argmax(-1) == fp32).float().mean()) == float((expected.argmax(-1) == fp32).float().mean())


def test_an_int8_gpt_keeps_its_cache_in_half_floats_and_decodes_as_with_float32(tiny: T2SModel, lib) -> None:
    if not lib.library.myna_half_cache():
        pytest.skip("this compiler has no _Float16: the int8 step keeps float32 caches")
    fast = use_flat_decode(prepare_gpt(copy.deepcopy(tiny), "int8"))
    assert fast.kv_dtype == torch.float16 and use_flat_decode(copy.deepcopy(tiny)).kv_dtype is None  # fp32: exact
    inputs, params = fx.tiny_inputs(), SamplingParams(top_k=5)
    tokens = list(iter_semantic_tokens(fast, inputs["phones"], inputs["bert"], inputs["prompt"], params,
                                       seeded_generator(4), early_stop_num=40))
    assert fast.h.layers[0].self_attn.kv_cache.k_cache.dtype == torch.float16 and len(tokens) > 10
    wide = use_flat_decode(prepare_gpt(copy.deepcopy(tiny), "int8"))
    wide.kv_dtype = None  # the same C step over a float32 cache
    half, full = fx.teacher_forced_logits(fast, tokens), fx.teacher_forced_logits(wide, tokens)
    assert wide.h.layers[0].self_attn.kv_cache.k_cache.dtype == torch.float32
    # rounding keys and values to half floats moves the logits far less than int8 itself does
    exact = fx.teacher_forced_logits(tiny, tokens)
    assert float((half - full).abs().max()) < 0.5 * float((full - exact).abs().max())
    fast.kv_dtype = None  # a cache of the other dtype is not reused: the next request allocates its own
    assert fast.cache_shape() is None


@torch.inference_mode()
def test_rows_of_a_batch_are_each_their_one_row_step(tiny: T2SModel, lib) -> None:
    model = use_flat_decode(prepare_gpt(copy.deepcopy(tiny), "int8"))
    gen = torch.Generator().manual_seed(0)
    heads, head_dim = model.config.head, model.config.hidden_dim // model.config.head
    caches = [(torch.randn(6, heads, 64, head_dim, generator=gen), torch.randn(6, heads, 64, head_dim, generator=gen))
              for _ in model.h.layers]
    tokens, cache_pos = torch.randint(0, 1024, (6, 1), generator=gen), torch.tensor([20, 5, 33, 9, 60, 1])

    def step(rows: list[int]) -> tuple[torch.Tensor, list]:
        model.setup_cache(len(rows), 64)
        for layer, (k, v) in zip(model.h.layers, caches, strict=True):
            layer.self_attn.kv_cache.k_cache.copy_(k[rows])
            layer.self_attn.kv_cache.v_cache.copy_(v[rows])
        logits = model.decode_step(tokens[rows], cache_pos[rows], cache_pos[rows] - 1,
                                   attend_len=[int(cache_pos[r]) + 1 for r in rows])
        return logits, [layer.self_attn.kv_cache.k_cache.clone() for layer in model.h.layers]

    six, six_keys = step(list(range(6)))
    for row in (0, 4):
        alone, keys = step([row])
        assert torch.equal(alone[0], six[row])
        assert all(torch.equal(a[0], b[row]) for a, b in zip(keys, six_keys, strict=True))  # same key written
    assert not torch.equal(six_keys[0][2, :, 33], caches[0][0][2, :, 33])  # each row wrote its own slot


def test_batched_decoding_with_the_c_step_gives_the_solo_tokens(tiny: T2SModel, lib) -> None:
    model = use_flat_decode(prepare_gpt(copy.deepcopy(tiny), "int8"))
    gen = torch.Generator().manual_seed(5)
    requests = [(torch.randint(0, 732, (1, n), generator=gen), 0.5 * torch.randn(1, 1024, n, generator=gen),
                 torch.randint(0, 1024, (1, 12 + n), generator=gen), 30 + n) for n in (6, 11, 17)]

    def solo(phones, bert, prompt, seed):
        return list(iter_semantic_tokens(model, phones, bert, prompt, SamplingParams(), seeded_generator(seed),
                                         early_stop_num=seed))

    expected = [solo(*r) for r in requests]
    decoder = BatchDecoder(model, slots=3)

    results: list = [None] * 3

    def run(i: int) -> None:
        phones, bert, prompt, seed = requests[i]
        results[i] = list(decoder.iter_tokens(phones, bert, prompt, SamplingParams(), seeded_generator(seed),
                                              early_stop_num=seed))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == expected
    assert decoder.rows_stepped > decoder.steps > 0


@torch.inference_mode()
def test_calls_the_c_step_cannot_take_go_to_the_module_path(tiny: T2SModel, lib, monkeypatch) -> None:
    model = use_flat_decode(prepare_gpt(copy.deepcopy(tiny), "int8"))
    reference = prepare_gpt(copy.deepcopy(tiny), "int8")
    reference.kv_dtype = model.kv_dtype
    fx.teacher_forced_logits(model, [1, 2, 3]), fx.teacher_forced_logits(reference, [1, 2, 3])  # fill both caches alike
    calls = []
    step = vars(model)["decode_step"].quantized
    monkeypatch.setattr(step, "_step", lambda *a: calls.append(a))  # the C call is never made below
    args = (torch.tensor([[4]]), torch.tensor([40]), torch.tensor([2]))
    assert torch.equal(model.decode_step(*args, attend_len=30), reference.decode_step(*args, attend_len=30))
    assert torch.equal(model.decode_step(*args), reference.decode_step(*args))  # masked fixed-shape path
    assert calls == []
    model.decode_step(*args, attend_len=41)
    assert len(calls) == 1


def test_loading_packs_the_c_step_from_the_kept_weights_as_from_the_layers(tiny_set: dict, tmp_path: Path,
                                                                          monkeypatch, lib) -> None:
    from myna.engine.loading import ModelPaths, load_synthesizer

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a fresh int8 weight cache
    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"])
    first = load_synthesizer(paths, "cpu", "int8", watermark=False)  # quantizes and keeps the weights
    read_back = []
    real = quant_step.Packed.of
    monkeypatch.setattr(quant_step.Packed, "of", classmethod(lambda cls, layer: read_back.append(1) or real(layer)))
    second = load_synthesizer(paths, "cpu", "int8", watermark=False)  # reads them: nothing read back from fbgemm
    assert read_back == []
    steps = [vars(synth.gpt)["decode_step"].quantized for synth in (first, second)]
    assert all(isinstance(step, quant_step.QuantDecodeStep) for step in steps)  # packed at load, before any request
    for a, b in zip(steps[0].packed, steps[1].packed, strict=True):
        assert all(torch.equal(x, y) for x, y in ((a.weight, b.weight), (a.scales, b.scales), (a.rowsums, b.rowsums)))
        assert (a.bias is None and b.bias is None) or torch.equal(a.bias, b.bias)
    assert vars(second.gpt)["decode_step"]._int8_weights is None  # not kept once packed


def test_every_thread_count_and_calling_thread_gives_the_same_floats(tiny: T2SModel, lib) -> None:
    # the step splits each product among its threads and meets at barriers of its own: the split must not
    # change a value, whichever thread calls it (3 threads: uneven shares, more threads than some CPUs have)
    fast = use_flat_decode(prepare_gpt(copy.deepcopy(tiny), "int8"))
    tokens = list(range(5, 45))
    alone = fx.teacher_forced_logits(fast, tokens)
    results: dict[int, torch.Tensor] = {}

    def run(threads: int) -> None:
        torch.set_num_threads(threads)  # this thread's setting only
        results[threads] = fx.teacher_forced_logits(fast, tokens)

    for threads in (2, 3):
        worker = threading.Thread(target=run, args=(threads,))
        worker.start()
        worker.join()
        assert torch.equal(results[threads], alone), threads
    assert isinstance(vars(fast)["decode_step"].quantized, quant_step.QuantDecodeStep)
