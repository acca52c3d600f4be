"""Chinese BERT features for the GPT: one 1024-d vector per phoneme, as upstream GPT-SoVITS computes them.

The tokenizer reads the normalized text (one token per character after Chinese normalization), the
third-from-last hidden layer is taken, [CLS]/[SEP] are dropped, and each character's vector is
repeated for its phonemes (word2ph). Other languages get zeros.

Only Chinese text needs the BERT, so `ChineseBert` reads its files on first use (once, also when
several threads ask at the same time): English and Japanese speech never pays for its 1.3 GB.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import torch

from myna.errors import InputError
from myna.features.bert_model import BertEncoder, load_bert_encoder
from myna.features.hf_files import ModelDirError, check_model_dir, weight_files

BERT_DIM = 1024


def zero_features(n_phones: int) -> torch.Tensor:
    """The features upstream uses for non-Chinese text: zeros (1024, n_phones)."""
    return torch.zeros(BERT_DIM, n_phones, dtype=torch.float32)


def load_tokenizer(model_dir: Path):
    """The BERT's `tokenizers.Tokenizer`: tokenizer.json (what transformers' fast tokenizer reads), else vocab.txt."""
    from tokenizers import Tokenizer
    from tokenizers.implementations import BertWordPieceTokenizer

    if (model_dir / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    elif (model_dir / "vocab.txt").is_file():
        lowercase = True
        config = model_dir / "tokenizer_config.json"
        if config.is_file():
            lowercase = bool(json.loads(config.read_text(encoding="utf-8")).get("do_lower_case", True))
        tokenizer = BertWordPieceTokenizer(str(model_dir / "vocab.txt"), lowercase=lowercase)._tokenizer
    else:
        raise ModelDirError(f"{model_dir}: no BERT tokenizer (tokenizer.json or vocab.txt)")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class ChineseBert:
    """chinese-roberta-wwm-ext-large (or a compatible BERT) from a local directory, read on first use."""

    def __init__(self, model_dir: str | Path, device: str | torch.device = "cpu"):
        self.model_dir = check_model_dir(model_dir, ("config.json",), "BERT model")
        weight_files(self.model_dir, "BERT")  # a missing file is reported now, not at the first Chinese sentence
        if not any((self.model_dir / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
            raise ModelDirError(f"{self.model_dir}: no BERT tokenizer (tokenizer.json or vocab.txt)")
        self.device = torch.device(device)
        self.tokenizer = None
        self.model: BertEncoder | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_parts(cls, tokenizer, model: BertEncoder, device: str | torch.device = "cpu") -> ChineseBert:
        """A ChineseBert around a loaded `tokenizers.Tokenizer` and encoder (tests, benchmarks)."""
        made = cls.__new__(cls)
        made.model_dir, made.device, made._lock = None, torch.device(device), threading.Lock()
        made.tokenizer, made.model = tokenizer, model.eval().to(made.device)
        return made

    @property
    def loaded(self) -> bool:
        """Whether the model has been read (it is on the first `features` call)."""
        return self.model is not None

    def load(self) -> BertEncoder:
        """Read the tokenizer and model now if not yet done (thread-safe; later calls return at once)."""
        if self.model is None:
            with self._lock:
                if self.model is None:
                    self.tokenizer = load_tokenizer(self.model_dir)
                    self.model = load_bert_encoder(self.model_dir, self.device)
        return self.model

    @torch.inference_mode()
    def features(self, norm_text: str, word2ph: list[int]) -> torch.Tensor:
        """Phoneme-level features (1024, sum(word2ph)) of Chinese normalized text."""
        if len(word2ph) != len(norm_text):
            raise InputError(f"word2ph has {len(word2ph)} entries for {len(norm_text)} characters of {norm_text!r}")
        model = self.load()
        encoded = self.tokenizer.encode(norm_text)
        ids = torch.tensor([encoded.ids], dtype=torch.long, device=self.device)
        types = torch.tensor([encoded.type_ids], dtype=torch.long, device=self.device)
        hidden = model(ids, types)[0][1:-1].float().cpu()
        if hidden.shape[0] != len(norm_text):
            raise InputError(
                f"the BERT tokenizer split {norm_text!r} into {hidden.shape[0]} tokens, expected one per character"
            )
        counts = torch.tensor(word2ph, dtype=torch.long)
        return hidden.repeat_interleave(counts, dim=0).T.contiguous()
