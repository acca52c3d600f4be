"""Chinese BERT features: the cut encoder gives the full model's third-from-last hidden state, bit for bit."""

from __future__ import annotations

import torch
from transformers import AutoModelForMaskedLM

from myna.features.bert import ChineseBert, feature_encoder
from myna.text import g2p


def test_features_come_from_the_cut_encoder_and_equal_the_full_models(tiny_set: dict) -> None:
    bert = ChineseBert(tiny_set["bert"])
    full = AutoModelForMaskedLM.from_pretrained(str(tiny_set["bert"]), local_files_only=True).eval()
    assert bert.cut and len(bert.model.encoder.layer) == len(full.base_model.encoder.layer) - 2
    phones = g2p("今天天气很好，我们去公园。", "zh")
    with torch.inference_mode():
        inputs = bert.tokenizer(phones.norm_text, return_tensors="pt")
        expected = full(**inputs, output_hidden_states=True)["hidden_states"][-3][0][1:-1]
    got = bert.features(phones.norm_text, phones.word2ph)
    assert got.shape == (1024, sum(phones.word2ph))
    assert torch.equal(got, expected.repeat_interleave(torch.tensor(phones.word2ph), dim=0).T)


def test_other_models_run_whole() -> None:
    from transformers import ElectraConfig, ElectraForMaskedLM

    assert feature_encoder(torch.nn.Linear(2, 2)) is None
    electra = ElectraForMaskedLM(ElectraConfig(vocab_size=20, embedding_size=8, hidden_size=8, num_hidden_layers=3,
                                               num_attention_heads=2, intermediate_size=16))
    assert feature_encoder(electra) is None  # BERT's layer list, but not a model whose cut is known to be exact
    assert len(electra.base_model.encoder.layer) == 3  # left as it was
