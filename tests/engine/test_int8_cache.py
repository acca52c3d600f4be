"""The int8 GPT's quantized projections are kept on disk: later loads skip quantizing and give the same layers."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
import torch

from myna.engine import int8_cache
from myna.engine.loading import load_gpt, load_int8_gpt
from myna.engine.precision import int8_layers, prepare_gpt
from myna.engine.t2s_decode import SamplingParams, generate_semantic, seeded_generator

pytestmark = pytest.mark.skipif("x86" not in torch.backends.quantized.supported_engines
                                and "fbgemm" not in torch.backends.quantized.supported_engines,
                                reason="no x86/fbgemm int8 kernels in this torch")


@pytest.fixture()
def gpt_file(tiny_set: dict, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the cache goes to ~/.cache/myna/int8
    copy = tmp_path / "gpt.ckpt"
    shutil.copy(tiny_set["gpt"], copy)
    return copy


def _quantize_calls(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = torch.quantize_per_channel

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "quantize_per_channel", counting)
    return calls


def _tokens(model) -> list[int]:
    phones = torch.randint(0, 300, (1, 20), generator=torch.Generator().manual_seed(1))
    prompt = torch.randint(0, 1024, (1, 15), generator=torch.Generator().manual_seed(2))
    return generate_semantic(model, phones, torch.zeros(1, 1024, 20), prompt, SamplingParams(top_k=5),
                             seeded_generator(3), early_stop_num=30).tolist()


def _same_layers(a, b) -> bool:
    pairs = list(zip(int8_layers(a), int8_layers(b), strict=True))
    return bool(pairs) and all(torch.equal(x, y) for la, lb in pairs
                               for x, y in zip(la.quantized()[:2], lb.quantized()[:2], strict=True))


def test_second_load_reads_the_kept_weights_and_decodes_the_same(gpt_file: Path, monkeypatch) -> None:
    direct = prepare_gpt(load_gpt(gpt_file), "int8", "cpu")
    calls = _quantize_calls(monkeypatch)
    first = load_int8_gpt(gpt_file)
    kept = int8_cache.cache_file(gpt_file)
    assert kept.is_file() and len(calls) == len(int8_layers(first))
    calls.clear()
    second = load_int8_gpt(gpt_file)
    assert calls == []  # nothing quantized again
    assert _same_layers(direct, second) and _same_layers(first, second)
    assert _tokens(second) == _tokens(direct)


def test_a_changed_gpt_file_is_quantized_again(gpt_file: Path, monkeypatch) -> None:
    load_int8_gpt(gpt_file)
    before = int8_cache.cache_file(gpt_file)
    info = gpt_file.stat()
    os.utime(gpt_file, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
    assert int8_cache.cache_file(gpt_file) != before
    calls = _quantize_calls(monkeypatch)
    load_int8_gpt(gpt_file)
    assert calls and int8_cache.cache_file(gpt_file).is_file()


@pytest.mark.parametrize("damage", ["garbage", "other_model"])
def test_unreadable_or_unfitting_kept_weights_are_ignored_and_replaced(gpt_file: Path, damage: str, caplog,
                                                                        monkeypatch) -> None:
    load_int8_gpt(gpt_file)
    kept = int8_cache.cache_file(gpt_file)
    if damage == "garbage":
        kept.write_bytes(b"not a safetensors file")
    else:  # weights of another shape under this file's name
        from safetensors.torch import load_file, save_file

        tensors = load_file(kept)
        name = next(k for k in tensors if k.endswith(".values"))
        tensors[name] = tensors[name][:, :-1].contiguous()
        save_file(tensors, kept)
    calls = _quantize_calls(monkeypatch)
    with caplog.at_level(logging.WARNING):
        model = load_int8_gpt(gpt_file)
    assert calls and "ignoring" in caplog.text
    assert _tokens(model) == _tokens(prepare_gpt(load_gpt(gpt_file), "int8", "cpu"))
    assert int8_cache.read(kept) is not None  # written again


def test_only_the_newest_files_are_kept(tmp_path: Path) -> None:
    for i in range(int8_cache.KEEP + 3):
        path = tmp_path / f"gpt-{i:02d}.safetensors"
        path.write_bytes(b"x")
        os.utime(path, (i, i))
    int8_cache._keep_newest(tmp_path, int8_cache.KEEP)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"gpt-{i:02d}.safetensors" for i in range(3, 3 + int8_cache.KEEP)]
