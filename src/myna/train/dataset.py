"""The feature cache that `myna data features` writes and the trainers read (format 1).

Layout of a cache directory CACHE::

    CACHE/features.json            the manifest (below); written last, by rename
    CACHE/wav32k/<key>.wav         training waveform: mono 32 kHz 16-bit PCM
    CACHE/phonemes/<key>.safetensors "phone_ids" int64 (N,); Chinese only: "bert" float32 (1024, N) and
                                   "word2ph" int64 (chars,); metadata "phones" (JSON list of symbols),
                                   "norm_text", "lang", "symbols"
    CACHE/hubert/<key>.safetensors "ssl" float32 (1, 768, T): HuBERT last hidden state, 50 frames/s
    CACHE/semantic/<key>.safetensors "codes" int64 (T',): SoVITS extract_latent tokens (T' = T // 2 at 25 Hz)
    CACHE/sv/<key>.safetensors     "sv_emb" float32 (1, 20480): v2Pro/v2ProPlus speaker embedding

Files are content-addressed: a key is a hash of what the part depends on (audio bytes, transcript,
language, symbol version, model identities), so several manifests can share one cache and stale
files are simply unreferenced. Every file is written under a temporary name and renamed.

The manifest (JSON, UTF-8)::

    {"format": 1,
     "version": "v2",                  SoVITS version of the model the tokens come from
     "symbols": "v1" | "v2",           phoneme symbol table of "phone_ids"
     "models": {"hubert": sha256, "sovits": sha256, "bert": sha256 | null, "sv": sha256 | null},
     "items": [{"name": "a.wav",       unique per manifest (the audio file's name)
                "audio": "/abs/a.wav", "speaker": "...", "lang": "zh" | "en" | "ja", "text": "...",
                "seconds": 3.21,       length of the training waveform
                "phones": N, "frames": T, "tokens": T',
                "wav32k": "wav32k/<key>.wav", "phonemes": "phonemes/<key>.safetensors",
                "hubert": "...", "semantic": "...", "sv": "sv/<key>.safetensors" | null}, ...]}

How the parts relate to upstream GPT-SoVITS's prepare_datasets outputs: "wav32k" = 5-wav32k/<name>
(0.95-peak mix, int16), "hubert" = 4-cnhubert/<name>.pt, "phonemes" = one 2-name2text.txt row (phones,
word2ph, norm_text) plus 3-bert/<name>.pt (Chinese only; other languages use zeros (1024, N), as
upstream's loaders do: `CachedUtterance.bert()` returns them), "semantic" = one 6-name2semantic.tsv
row, "sv" = 7-sv_cn/<name>.pt. Upstream's dataset filters (SoVITS: 0.6 s < duration < 54 s; GPT:
phoneme/token ratios) are the trainers' business, not the cache's.

Reading: `FeatureCache.open(CACHE)` -> `.items` (list of `CachedUtterance`) with loaders per part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from myna.atomic import atomic_write
from myna.errors import InputError

CACHE_FORMAT = 1
MANIFEST_NAME = "features.json"
WAV_RATE = 32000
BERT_DIM = 1024
PARTS = ("wav32k", "phonemes", "hubert", "semantic", "sv")


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write tensors (+ string metadata) as safetensors, atomically."""
    from safetensors.torch import save

    atomic_write(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata), parents=True)


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file (on the CPU)."""
    from safetensors.torch import load_file

    return load_file(str(path))


def tensor_info(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Shapes of the tensors in a safetensors file and its metadata, without reading the data."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        return shapes, dict(handle.metadata() or {})


@dataclass(frozen=True)
class CachedUtterance:
    """One utterance of a feature cache; loaders read its parts on demand."""

    root: Path
    record: dict

    @property
    def name(self) -> str:
        """Unique name within the manifest."""
        return self.record["name"]

    def wav(self) -> np.ndarray:
        """Training waveform, float32 (samples,) at 32 kHz in [-1, 1) (16-bit values / 32768)."""
        import soundfile

        data, rate = soundfile.read(str(self.root / self.record["wav32k"]), dtype="float32")
        if rate != WAV_RATE:
            raise InputError(f"{self.record['wav32k']}: {rate} Hz, expected {WAV_RATE}")
        return data

    def phone_ids(self) -> torch.Tensor:
        """Phoneme ids, int64 (N,)."""
        return load_tensors(self.root / self.record["phonemes"])["phone_ids"]

    def text_info(self) -> dict:
        """{"phones": [...], "norm_text": str, "word2ph": list | None, "lang": str, "symbols": str}."""
        _, meta = tensor_info(self.root / self.record["phonemes"])
        tensors = load_tensors(self.root / self.record["phonemes"])
        word2ph = tensors["word2ph"].tolist() if "word2ph" in tensors else None
        return {"phones": json.loads(meta["phones"]), "norm_text": meta["norm_text"], "word2ph": word2ph,
                "lang": meta["lang"], "symbols": meta["symbols"]}

    def bert(self) -> torch.Tensor:
        """BERT features float32 (1024, N): stored ones for Chinese, zeros otherwise (as upstream)."""
        tensors = load_tensors(self.root / self.record["phonemes"])
        if "bert" in tensors:
            return tensors["bert"]
        return torch.zeros(BERT_DIM, tensors["phone_ids"].shape[0], dtype=torch.float32)

    def ssl(self) -> torch.Tensor:
        """HuBERT features float32 (1, 768, T)."""
        return load_tensors(self.root / self.record["hubert"])["ssl"]

    def semantic(self) -> torch.Tensor:
        """Semantic tokens int64 (T',)."""
        return load_tensors(self.root / self.record["semantic"])["codes"]

    def sv_emb(self) -> torch.Tensor | None:
        """Speaker embedding float32 (1, 20480) for v2Pro/v2ProPlus caches, else None."""
        if not self.record.get("sv"):
            return None
        return load_tensors(self.root / self.record["sv"])["sv_emb"]


@dataclass(frozen=True)
class FeatureCache:
    """A manifest and the cache directory it lives in."""

    root: Path
    version: str
    symbols: str
    models: dict
    items: list[CachedUtterance]

    @classmethod
    def open(cls, path: str | Path) -> FeatureCache:
        """Read CACHE/features.json (or a manifest path) and check its format and files."""
        path = Path(path)
        manifest = path / MANIFEST_NAME if path.is_dir() else path
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{manifest}: not a myna feature cache ({exc}); run `myna data features` first") from exc
        if data.get("format") != CACHE_FORMAT:
            raise InputError(f"{manifest}: cache format {data.get('format')!r}, this myna reads {CACHE_FORMAT}; "
                             "run `myna data features` again")
        root = manifest.parent
        items = [CachedUtterance(root, record) for record in data["items"]]
        for item in items:
            for part in PARTS:
                if item.record.get(part) and not (root / item.record[part]).is_file():
                    raise InputError(f"{manifest}: {item.name}'s {part} file {item.record[part]} is missing; "
                                     "run `myna data features` again")
        return cls(root, data["version"], data["symbols"], data["models"], items)

    @property
    def seconds(self) -> float:
        """Total length of the training waveforms."""
        return float(sum(item.record["seconds"] for item in self.items))
