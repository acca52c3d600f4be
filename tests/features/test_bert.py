"""Chinese BERT features: myna's encoder gives transformers' hidden_states[-3] bit for bit, read lazily, once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from myna.features import bert_model
from myna.features.bert import ChineseBert, load_tokenizer
from myna.features.bert_model import load_bert_encoder
from myna.features.hf_files import ModelDirError
from myna.text import g2p

TEXTS = ["今天天气很好，我们去公园。", "他说：“好！”然后走了……", "参考音频的文字。"]


def _expected(model_dir: Path, text: str, word2ph: list[int]) -> torch.Tensor:
    full = AutoModelForMaskedLM.from_pretrained(str(model_dir), local_files_only=True).eval()
    inputs = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)(text, return_tensors="pt")
    with torch.inference_mode():
        hidden = full(**inputs, output_hidden_states=True)["hidden_states"][-3][0][1:-1]
    return hidden.repeat_interleave(torch.tensor(word2ph), dim=0).T


def test_features_equal_transformers_third_from_last_layer(tiny_set: dict) -> None:
    bert = ChineseBert(tiny_set["bert"])
    for text in TEXTS:
        phones = g2p(text, "zh")
        got = bert.features(phones.norm_text, phones.word2ph)
        assert got.shape == (1024, sum(phones.word2ph))
        assert torch.equal(got, _expected(tiny_set["bert"], phones.norm_text, phones.word2ph))


def test_only_the_feature_layers_are_built(tiny_set: dict) -> None:
    encoder = load_bert_encoder(tiny_set["bert"])
    config = json.loads((Path(tiny_set["bert"]) / "config.json").read_text())
    assert len(encoder.encoder.layer) == config["num_hidden_layers"] - 2
    assert all(p.dtype == torch.float32 and not p.is_meta for p in encoder.parameters())


def test_tokenizer_ids_equal_transformers_from_tokenizer_json_and_from_vocab_txt(tiny_set: dict, tmp_path: Path) -> None:
    texts = [*TEXTS, "ABC abc 123，。", "龘未知字"]
    reference = AutoTokenizer.from_pretrained(str(tiny_set["bert"]), local_files_only=True)
    vocab_only = tmp_path / "vocab_only"
    vocab_only.mkdir()
    (vocab_only / "vocab.txt").write_bytes((Path(tiny_set["bert"]) / "vocab.txt").read_bytes())
    for model_dir in (Path(tiny_set["bert"]), vocab_only):
        tokenizer = load_tokenizer(model_dir)
        for text in texts:
            assert tokenizer.encode(text).ids == reference(text)["input_ids"], (model_dir, text)


def test_the_model_is_read_on_first_use_once_across_threads(tiny_set: dict, monkeypatch) -> None:
    reads = []
    real = bert_model.load_bert_encoder

    def counting(*args, **kwargs):
        reads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr("myna.features.bert.load_bert_encoder", counting)
    bert = ChineseBert(tiny_set["bert"])
    assert not bert.loaded and reads == []
    phones = g2p(TEXTS[0], "zh")
    start = threading.Barrier(4)
    results: list[torch.Tensor] = []

    def work() -> None:
        start.wait()
        results.append(bert.features(phones.norm_text, phones.word2ph))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reads) == 1 and bert.loaded and len(results) == 4
    assert all(torch.equal(r, results[0]) for r in results)


def test_torch_file_with_old_layer_norm_names_loads_the_same(tiny_set: dict, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    model_dir = tmp_path / "bert_bin"
    model_dir.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (model_dir / name).write_bytes((Path(tiny_set["bert"]) / name).read_bytes())
    state = load_file(Path(tiny_set["bert"]) / "model.safetensors")
    old = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
           for k, v in state.items()}
    assert any(k.endswith("LayerNorm.gamma") for k in old)
    torch.save(old, model_dir / "pytorch_model.bin")
    phones = g2p(TEXTS[0], "zh")
    from_bin = ChineseBert(model_dir).features(phones.norm_text, phones.word2ph)
    assert torch.equal(from_bin, ChineseBert(tiny_set["bert"]).features(phones.norm_text, phones.word2ph))


def test_problems_are_reported_when_the_directory_is_given(tiny_set: dict, tmp_path: Path) -> None:
    model_dir = tmp_path / "bert"
    model_dir.mkdir()
    (model_dir / "config.json").write_bytes((Path(tiny_set["bert"]) / "config.json").read_bytes())
    with pytest.raises(ModelDirError, match="no BERT weights"):
        ChineseBert(model_dir)
    (model_dir / "model.safetensors").symlink_to(Path(tiny_set["bert"]) / "model.safetensors")
    with pytest.raises(ModelDirError, match="no BERT tokenizer"):
        ChineseBert(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "model_type": "electra"}))
    with pytest.raises(ModelDirError, match="model_type 'electra'"):
        load_bert_encoder(model_dir)
