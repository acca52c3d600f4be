"""Chinese BERT features for the GPT: one 1024-d vector per phoneme, as upstream GPT-SoVITS computes them.

The tokenizer reads the normalized text (one token per character after Chinese normalization), the
third-from-last hidden layer is taken, [CLS]/[SEP] are dropped, and each character's vector is
repeated for its phonemes (word2ph). Other languages get zeros.
"""

from __future__ import annotations

from pathlib import Path

import torch

from myna.errors import InputError
from myna.features.content import check_model_dir

BERT_DIM = 1024


def zero_features(n_phones: int) -> torch.Tensor:
    """The features upstream uses for non-Chinese text: zeros (1024, n_phones)."""
    return torch.zeros(BERT_DIM, n_phones, dtype=torch.float32)


class ChineseBert:
    """chinese-roberta-wwm-ext-large (or a compatible BERT) from a local directory."""

    def __init__(self, model_dir: str | Path, device: str | torch.device = "cpu"):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        model_dir = check_model_dir(model_dir, ("config.json",), "BERT model")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModelForMaskedLM.from_pretrained(str(model_dir), local_files_only=True).eval().to(device)
        self.device = torch.device(device)

    @torch.inference_mode()
    def features(self, norm_text: str, word2ph: list[int]) -> torch.Tensor:
        """Phoneme-level features (1024, sum(word2ph)) of Chinese normalized text."""
        if len(word2ph) != len(norm_text):
            raise InputError(f"word2ph has {len(word2ph)} entries for {len(norm_text)} characters of {norm_text!r}")
        inputs = self.tokenizer(norm_text, return_tensors="pt").to(self.device)
        hidden = self.model(**inputs, output_hidden_states=True)["hidden_states"][-3][0][1:-1].float().cpu()
        if hidden.shape[0] != len(norm_text):
            raise InputError(
                f"the BERT tokenizer split {norm_text!r} into {hidden.shape[0]} tokens, expected one per character"
            )
        counts = torch.tensor(word2ph, dtype=torch.long)
        return hidden.repeat_interleave(counts, dim=0).T.contiguous()
