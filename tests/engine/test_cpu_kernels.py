"""The C decode-attention kernel: built with the machine's compiler, equal to torch's attention, optional."""

from __future__ import annotations

import ctypes
import os
import tempfile

import pytest
import torch
from torch.nn import functional as F

from myna.engine import cpu_kernels
from myna.engine.cpu_kernels import CpuKernels, build, load_kernels


@pytest.fixture(scope="module")
def kernels() -> CpuKernels:
    if cpu_kernels._compiler() is None:
        pytest.skip("no C compiler here: the engine uses torch's attention")
    loaded = load_kernels()
    assert loaded is not None, "a C compiler is installed: the kernels must build and load"
    return loaded


@pytest.mark.parametrize(("heads", "dim", "max_len", "slot"), [(16, 32, 400, 299), (2, 16, 8, 0), (3, 24, 50, 49),
                                                                (4, 8, 64, 17), (1, 19, 30, 11)])
@pytest.mark.parametrize("spread", [2.0, 200.0])  # x200: scores hundreds apart, most weights below e^-87
def test_decode_attention_equals_torch_attention_and_writes_the_cache(kernels: CpuKernels, heads: int, dim: int,
                                                                      max_len: int, slot: int, spread: float) -> None:
    gen = torch.Generator().manual_seed(slot + heads)
    k_cache = torch.randn(1, heads, max_len, dim, generator=gen)
    v_cache = torch.randn(1, heads, max_len, dim, generator=gen)
    qkv = torch.randn(3, heads, dim, generator=gen)
    qkv[0] *= spread
    expected_k, expected_v = k_cache.clone(), v_cache.clone()
    expected_k[0, :, slot], expected_v[0, :, slot] = qkv[1], qkv[2]
    query, keys, values = qkv[0].view(1, heads, 1, dim), expected_k[:, :, : slot + 1], expected_v[:, :, : slot + 1]
    exact = F.scaled_dot_product_attention(query.double(), keys.double(), values.double()).view(-1)
    torch_error = float((F.scaled_dot_product_attention(query, keys, values).view(-1).double() - exact).abs().max())
    out, scratch = torch.full((heads * dim,), float("nan")), torch.empty(heads * max_len)
    got = kernels.decode_attention(qkv.view(-1), k_cache, v_cache, slot, out, scratch)
    assert got is out
    # as close to float64 as torch's fp32 attention, within a small factor (measured: 0.6x at ordinary score
    # spreads, up to 4x when scores lie hundreds apart)
    assert float((got.double() - exact).abs().max()) <= 5 * torch_error + 1e-6
    threads = torch.get_num_threads()
    try:  # heads are independent: one thread computes exactly what several do
        torch.set_num_threads(1)
        alone = kernels.decode_attention(qkv.view(-1), k_cache.clone(), v_cache.clone(), slot, torch.empty_like(out),
                                         scratch)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(alone, got)
    assert torch.equal(k_cache, expected_k) and torch.equal(v_cache, expected_v)  # only the slot changed
    with pytest.raises(IndexError, match="slot"):
        kernels.decode_attention(qkv.view(-1), k_cache, v_cache, max_len, out, scratch)
    with pytest.raises(ValueError, match="scratch"):
        kernels.decode_attention(qkv.view(-1), k_cache, v_cache, slot, out, scratch[: heads * max_len - 1])
    with pytest.raises(ValueError, match="contiguous"):
        kernels.decode_attention(qkv.view(-1), k_cache.transpose(2, 3).contiguous().transpose(2, 3), v_cache, slot,
                                 out, scratch)
    with pytest.raises(ValueError, match="CPU"):
        kernels.decode_attention(qkv.view(-1), k_cache, v_cache, slot, out.to("meta"), scratch)
    with pytest.raises(TypeError, match="float32"):
        kernels.decode_attention(qkv.view(-1), k_cache.half(), v_cache.half(), slot, out, scratch)


def test_a_build_is_reused_and_a_missing_compiler_means_no_kernels(tmp_path, monkeypatch) -> None:
    first = build(tmp_path)
    assert first is not None and first.parent == tmp_path
    stamp = first.stat().st_mtime_ns
    assert build(tmp_path) == first and first.stat().st_mtime_ns == stamp  # not compiled again
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no partial files left behind
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert build(tmp_path / "other") is None


def test_a_failing_build_leaves_nothing_and_returns_none(tmp_path, monkeypatch) -> None:
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C\n")
    monkeypatch.setattr(cpu_kernels, "SOURCES", (broken,))
    assert build(tmp_path / "out") is None
    marker = [p.name for p in (tmp_path / "out").iterdir()]  # no library, no partial file: the compiler's reasons
    assert len(marker) == 1 and marker[0].endswith(".failed")
    assert "error" in (tmp_path / "out" / marker[0]).read_text()
    assert build(tmp_path / "out") is None  # later processes do not try again
    assert [p.name for p in (tmp_path / "out").iterdir()] == marker


def test_the_cache_folder_falls_back_when_home_is_not_writable(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("a file where a folder should be")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = cpu_kernels._cache_dir()
    assert folder is not None and folder.parent == tmp_path / "tmp" and os.access(folder, os.W_OK)
    assert folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o777)  # others could plant a library there: no kernels rather than theirs
    assert cpu_kernels._cache_dir() is None
    assert build() is None


def test_the_library_is_built_in_the_user_cache_and_a_corrupt_copy_is_rebuilt(tmp_path, monkeypatch) -> None:
    if cpu_kernels._compiler() is None:
        pytest.skip("no C compiler here")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = build()
    assert path is not None and path.parent == tmp_path / "home" / ".cache" / "myna" / "kernels"  # never the package
    path.write_bytes(b"\x7fELF but cut short")  # e.g. a copy truncated by a full disk
    rebuilt = load_kernels.__wrapped__()  # the cached process-wide library aside: load this folder's
    assert rebuilt is not None and rebuilt.path == path and path.read_bytes()[:4] == b"\x7fELF" and path.stat().st_size > 1000
    heads, dim, max_len = 2, 8, 4
    out = rebuilt.decode_attention(torch.ones(3 * heads * dim), torch.zeros(1, heads, max_len, dim),
                                   torch.zeros(1, heads, max_len, dim), 0, torch.empty(heads * dim),
                                   torch.empty(heads * max_len))
    assert torch.equal(out, torch.ones(heads * dim))  # one position: its value, exactly


def test_a_library_of_another_source_is_not_reused(tmp_path, monkeypatch) -> None:
    if cpu_kernels._compiler() is None:
        pytest.skip("no C compiler here")
    source = tmp_path / "k.c"
    monkeypatch.setattr(cpu_kernels, "SOURCES", (source,))
    source.write_text("int myna_version(void) { return 1; }\n")
    old = build(tmp_path / "out")
    source.write_text("int myna_version(void) { return 2; }\n")  # the sources change (an upgrade): built anew
    new = build(tmp_path / "out")
    assert old is not None and new is not None and new != old
    assert ctypes.CDLL(str(new)).myna_version() == 2


@pytest.mark.parametrize(("dim", "length"), [(32, 300), (16, 1), (24, 50), (8, 17)])  # 16 and 32: the vector loop
def test_half_float_attention_equals_exact_attention_over_the_rounded_cache(kernels: CpuKernels, dim: int,
                                                                           length: int) -> None:
    library = kernels.library
    if not library.myna_half_cache():
        pytest.skip("this compiler has no _Float16: the int8 step keeps float32 caches")
    gen = torch.Generator().manual_seed(dim + length)
    query = torch.randn(dim, generator=gen)
    keys, values = torch.randn(length, dim, generator=gen) * 3, torch.randn(length, dim, generator=gen)
    stored = {}
    for name, source in (("keys", keys), ("values", values)):
        stored[name] = torch.empty(length, dim, dtype=torch.float16)
        library.myna_store_half(ctypes.c_void_p(stored[name].data_ptr()), ctypes.c_void_p(source.data_ptr()),
                                length * dim)
        assert torch.equal(stored[name], source.half()), name  # rounded to nearest even, as torch rounds
    out, scratch, scale = torch.full((dim,), float("nan")), torch.empty(length), 1 / dim**0.5
    library.myna_attend_head_half(*(ctypes.c_void_p(t.data_ptr()) for t in (query, stored["keys"], stored["values"], out)),
                                  length, dim, ctypes.c_float(scale), ctypes.c_void_p(scratch.data_ptr()))
    exact = F.scaled_dot_product_attention(*(t.double().view(1, 1, -1, dim) for t in (query, *stored.values())))
    assert float((out.double() - exact.view(-1)).abs().max()) < 1e-5
