"""`myna data features`: a `.list` -> the per-utterance features the trainers read, cached on disk.

For each utterance this computes what upstream GPT-SoVITS's prepare_datasets scripts compute (the
file layout is myna's own, described in `myna.train.dataset`):

- the 32 kHz training waveform: half peak-normalized to 0.95, half as recorded (16-bit);
- phonemes (the language's front-end, as upstream's cleaner) and, for Chinese, BERT features;
- HuBERT content features (last hidden state) of that waveform resampled to 16 kHz;
- semantic tokens: the SoVITS model's `extract_latent` of the HuBERT features;
- for v2Pro/v2ProPlus, the speaker-verification embedding of the 16-bit waveform.

The content and speaker encoders are upstream's (HuBERT, ERes2NetV2) unless `FeatureModels` names
others (a from-scratch model: Whisper tiny.en states, Resemblyzer embeddings; the "hubert" part then
holds Whisper's states). Without a SoVITS file (`sovits=None`, before a from-scratch SoVITS exists)
the semantic tokens are skipped; a later run with the trained SoVITS adds them and reuses the rest.

Every part is stored under a key hashing exactly what it depends on (audio bytes, text, language,
symbol version, the identity of the models used), so an unchanged utterance is never recomputed
and an edited transcript recomputes only its phonemes. Models are loaded only when some part is
missing. Files are written to a temporary name, then renamed.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from myna.atomic import atomic_write
from myna.audio.decode import decode
from myna.audio.io import AudioError, resample_soxr
from myna.errors import InputError, MynaError
from myna.features.encoders import (
    ERES2NET,
    HUBERT,
    RESEMBLYZER,
    WHISPER,
    load_content_encoder,
    load_speaker_encoder,
)
from myna.train.dataset import (
    CACHE_FORMAT,
    MANIFEST_NAME,
    PARTS,
    WAV_RATE,
    load_tensors,
    save_tensors,
    tensor_info,
)
from myna.train.extras import require
from myna.train.listfile import ListEntry, read_list

HUBERT_RATE = 16000
# Upstream's 2-get-hubert-wav32k.py: a 0.95-peak-normalized copy and the original, half and half;
# HuBERT gets the same mix scaled by 1145.14 (its group norm makes the scale immaterial; kept so the
# numbers match upstream's).
_PEAK, _MIX, _HUBERT_SCALE = 0.95, 0.5, 1145.14
_MAX_PEAK = 2.2
_PRO_VERSIONS = ("v2Pro", "v2ProPlus")


@dataclass(frozen=True)
class FeatureModels:
    """Local model files: HuBERT directory, SoVITS checkpoint, Chinese BERT (zh text), SV model (v2Pro).

    `content`/`speaker` name the encoders (myna.features.encoders); `version` is the SoVITS version
    when `sovits` is None (no tokens yet)."""

    hubert: Path | None
    sovits: Path | None
    bert: Path | None = None
    sv: Path | None = None
    device: str = "cpu"
    content: str = HUBERT
    speaker: str = ERES2NET
    version: str | None = None


@dataclass
class FeatureReport:
    """What `extract_features` computed or reused per part, the models it loaded, what it skipped."""

    manifest: Path
    items: int = 0
    computed: Counter = field(default_factory=Counter)
    reused: Counter = field(default_factory=Counter)
    loaded_models: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> list[str]:
        """Human-readable lines."""
        lines = [f"{self.items} utterances -> {self.manifest}"]
        for part in PARTS:
            if self.computed[part] or self.reused[part]:
                lines.append(f"{part}: computed {self.computed[part]}, reused {self.reused[part]}")
        lines += [f"skipped {name}: {reason}" for name, reason in self.skipped]
        return lines


def model_identity(path: str | Path | None) -> str | None:
    """sha256 of a model file, or of a model directory's files (relative names and bytes, sorted)."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such model file or directory")
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode() + b"\0")
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps([CACHE_FORMAT, *parts], ensure_ascii=False).encode()).hexdigest()[:32]


class _Models:
    """The models, each loaded on first use (a run that reuses everything loads none)."""

    def __init__(self, paths: FeatureModels):
        self.paths = paths
        self.loaded: list[str] = []
        self._models: dict[str, object] = {}

    def get(self, name: str):
        """The model `name` (hubert, sovits, bert, sv), loaded now if needed."""
        if name not in self._models:
            self._models[name] = self._load(name)
            self.loaded.append(name)
        return self._models[name]

    def _load(self, name: str):
        device = self.paths.device
        if name == "hubert":
            return load_content_encoder(self.paths.content, self.paths.hubert, device)
        if name == "sovits":
            from myna.engine.loading import load_sovits

            return load_sovits(self.paths.sovits).to(device)
        if name == "bert":
            if self.paths.bert is None:
                raise InputError("Chinese transcripts need the Chinese BERT model: give --bert DIR")
            from myna.features.bert import ChineseBert

            return ChineseBert(self.paths.bert, device)
        return load_speaker_encoder(self.paths.speaker, self.paths.sv, device)


def extract_features(source: str | Path | Iterable[ListEntry], cache_dir: str | Path, models: FeatureModels,
                     progress: bool = False) -> FeatureReport:
    """Compute (or reuse) every utterance's features in `cache_dir`, then write its manifest."""
    tqdm = require("tqdm").tqdm

    from myna import checkpoints

    cache_dir = Path(cache_dir)
    report = FeatureReport(cache_dir / MANIFEST_NAME)
    if isinstance(source, (str, Path)):
        entries, problems = read_list(source)
        report.skipped += [(f"{source}:{number}", reason) for number, reason in problems]
    else:
        entries = list(source)
    if not entries:
        raise InputError("no utterances to extract features from" + _reasons(report.skipped))
    version = checkpoints.read_sovits(models.sovits).version if models.sovits is not None else models.version
    if version is None:
        raise InputError("no SoVITS model given: pass the SoVITS file, or the version of the model to train")
    is_pro = version in _PRO_VERSIONS
    if is_pro and models.sv is None and models.speaker != RESEMBLYZER:
        raise InputError(f"{models.sovits} is a {version} model: give the speaker-verification model (--sv FILE)")
    symbols = "v1" if version == "v1" else "v2"
    ids = {"hubert": _encoder_identity(models.content, models.hubert), "sovits": model_identity(models.sovits),
           "bert": model_identity(models.bert),
           "sv": _encoder_identity(models.speaker, models.sv) if is_pro else None}
    scale = _HUBERT_SCALE if models.content == HUBERT else 1.0
    loader = _Models(models)
    items, names = [], set()
    for entry in tqdm(entries, desc="features", unit="utt", disable=not progress):
        try:
            item = _utterance(entry, cache_dir, loader, ids, symbols, is_pro, report, scale)
        except (MynaError, OSError) as exc:
            report.skipped.append((str(entry.audio), str(exc)))
            continue
        items.append({"name": _unique_name(Path(entry.audio).name, names), **item})
    report.loaded_models = list(loader.loaded)
    if not items:
        raise InputError("no utterance could be prepared" + _reasons(report.skipped))
    manifest = {"format": CACHE_FORMAT, "version": version, "symbols": symbols, "models": ids, "items": items}
    atomic_write(report.manifest, json.dumps(manifest, ensure_ascii=False, indent=1), parents=True)
    report.items = len(items)
    return report


def _encoder_identity(name: str, path: Path | None) -> str | None:
    """Cache identity of an encoder: its files' hash, and for a non-upstream encoder its name too."""
    if name == WHISPER:
        from myna.features.whisper import IDENTITY, bundled_whisper_dir

        return f"{IDENTITY}:{model_identity(bundled_whisper_dir())}"
    if name == RESEMBLYZER:
        from myna.features.ge2e import BUNDLED, IDENTITY

        return f"{IDENTITY}:{model_identity(BUNDLED)}"
    return model_identity(path)


def _reasons(skipped: list[tuple[str, str]]) -> str:
    return "".join(f"; {name}: {reason}" for name, reason in skipped[:10])


def _unique_name(name: str, used: set[str]) -> str:
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    used.add(candidate)
    return candidate


def _utterance(entry: ListEntry, cache: Path, models: _Models, ids: dict, symbols: str, is_pro: bool,
               report: FeatureReport, scale: float = _HUBERT_SCALE) -> dict:
    """Every part of one utterance (computed or reused) -> its manifest record (without "name")."""
    audio_key = hashlib.sha256(Path(entry.audio).read_bytes()).hexdigest()
    bert_id = ids["bert"] if entry.lang == "zh" else None
    paths = {
        "wav32k": f"wav32k/{_key('wav32k', audio_key)}.wav",
        "phonemes": f"phonemes/{_key('phonemes', entry.text, entry.lang, symbols, bert_id)}.safetensors",
        "hubert": f"hubert/{_key('hubert', audio_key, ids['hubert'])}.safetensors",
    }
    paths["semantic"] = (f"semantic/{_key('semantic', paths['hubert'], ids['sovits'])}.safetensors"
                         if ids["sovits"] is not None else None)
    paths["sv"] = f"sv/{_key('sv', audio_key, ids['sv'])}.safetensors" if is_pro else None

    def missing(part: str) -> bool:
        there = (cache / paths[part]).is_file()
        (report.reused if there else report.computed)[part] += 1
        return not there

    if missing("phonemes"):
        save_tensors(cache / paths["phonemes"], *_text_part(entry, symbols, models))
    mixed = None
    if missing("wav32k"):
        mixed = _mixed_wave(entry.audio)
        _write_pcm16(cache / paths["wav32k"], mixed)
    if missing("hubert"):
        mixed = _mixed_wave(entry.audio) if mixed is None else mixed
        wave_16k = resample_soxr((mixed * scale).astype(np.float32), WAV_RATE, HUBERT_RATE)
        ssl = models.get("hubert").encode(torch.from_numpy(wave_16k)[None]).float().cpu()
        if not torch.isfinite(ssl).all():
            raise InputError(f"{entry.audio}: the content encoder produced NaN features for this clip")
        save_tensors(cache / paths["hubert"], {"ssl": ssl})
    if paths["semantic"] is not None and missing("semantic"):
        sovits = models.get("sovits")
        ssl = load_tensors(cache / paths["hubert"])["ssl"]
        with torch.inference_mode():
            codes = sovits.extract_latent(ssl.to(next(sovits.parameters()).device))
        save_tensors(cache / paths["semantic"], {"codes": codes[0, 0].long().cpu()})
    if is_pro and missing("sv"):
        wave = torch.from_numpy(_read_pcm16(cache / paths["wav32k"]))[None]
        save_tensors(cache / paths["sv"], {"sv_emb": models.get("sv").embed(wave, rate=WAV_RATE).float().cpu()})
    import soundfile

    text_shapes, _ = tensor_info(cache / paths["phonemes"])
    return {
        "audio": str(entry.audio), "speaker": entry.speaker, "lang": entry.lang, "text": entry.text,
        "seconds": round(soundfile.info(str(cache / paths["wav32k"])).frames / WAV_RATE, 4),
        "phones": text_shapes["phone_ids"][0],
        "frames": tensor_info(cache / paths["hubert"])[0]["ssl"][-1],
        "tokens": tensor_info(cache / paths["semantic"])[0]["codes"][0] if paths["semantic"] else 0,
        **paths,
    }


def _text_part(entry: ListEntry, symbols: str, models: _Models) -> tuple[dict, dict]:
    """Phoneme ids (+ word2ph and BERT features for Chinese) and text metadata, as upstream's 1-get-text."""
    from myna.text import g2p

    # Upstream's dataset script rewrites these two characters before its cleaner.
    text = entry.text.replace("%", "-").replace("￥", ",")
    phonemes = g2p(text, entry.lang, symbols)
    if not phonemes.ids:
        raise InputError(f"the transcript {entry.text!r} has no pronounceable text")
    tensors = {"phone_ids": torch.tensor(phonemes.ids, dtype=torch.long)}
    if entry.lang == "zh":
        bert = models.get("bert").features(phonemes.norm_text, phonemes.word2ph)
        if bert.shape[-1] != len(phonemes.ids):
            raise InputError(f"BERT features cover {bert.shape[-1]} of {len(phonemes.ids)} phonemes of {entry.text!r}")
        tensors["bert"] = bert.float()
        tensors["word2ph"] = torch.tensor(phonemes.word2ph, dtype=torch.long)
    meta = {"phones": json.dumps(phonemes.phones, ensure_ascii=False), "norm_text": phonemes.norm_text,
            "lang": entry.lang, "symbols": symbols}
    return tensors, meta


def _mixed_wave(path: Path) -> np.ndarray:
    """The 32 kHz training waveform (float, before 16-bit rounding): upstream's peak mix."""
    audio = decode(path, WAV_RATE)
    peak = float(np.max(np.abs(audio)))
    if peak == 0.0:
        raise AudioError(f"{path}: the clip is digital silence")
    if peak > _MAX_PEAK:
        raise AudioError(f"{path}: samples reach {peak:.2f}, far beyond full scale; the file looks broken")
    return (audio / peak * (_PEAK * _MIX) + (1 - _MIX) * audio).astype(np.float32)


def _write_pcm16(path: Path, mixed: np.ndarray) -> None:
    """16-bit PCM WAV, truncating toward zero as upstream's int16 cast does."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, (mixed.astype(np.float64) * 32768.0).astype(np.int16), WAV_RATE,
                    format="WAV", subtype="PCM_16")
    atomic_write(path, buffer.getvalue(), parents=True)


def _read_pcm16(path: Path) -> np.ndarray:
    """A cached training waveform as float32 (int16 / 32768), as upstream reads it for the SV model."""
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float32")
    if rate != WAV_RATE:
        raise AudioError(f"{path}: the cached waveform is {rate} Hz, expected {WAV_RATE}")
    return data
