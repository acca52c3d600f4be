"""Build a Synthesizer from model files or from a directory laid out like upstream's `pretrained_models`."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

from myna import checkpoints
from myna.audio.watermark import Watermarker
from myna.engine.synthesizer import Synthesizer
from myna.errors import InputError
from myna.models.sovits import SoVITS, SoVITSConfig
from myna.models.t2s import T2SConfig, T2SModel

log = logging.getLogger(__name__)

# Where upstream's pretrained_models directory keeps each part (first match wins).
_LAYOUT = {
    "gpt": {
        "v2": ["gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"],
        "v1": ["s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt"],
        "v2Pro": ["s1v3.ckpt"],
        "v2ProPlus": ["s1v3.ckpt"],
    },
    "sovits": {
        "v2": ["gsv-v2final-pretrained/s2G2333k.pth"],
        "v1": ["s2G488k.pth"],
        "v2Pro": ["v2Pro/s2Gv2Pro.pth"],
        "v2ProPlus": ["v2Pro/s2Gv2ProPlus.pth"],
    },
}
_HUBERT_DIR = "chinese-hubert-base"
_BERT_DIR = "chinese-roberta-wwm-ext-large"
_SV_FILE = "sv/pretrained_eres2netv2w24s4ep4.ckpt"


@dataclass(frozen=True)
class ModelPaths:
    """The files a Synthesizer needs; `bert` only for Chinese text, `sv` only for v2Pro/v2ProPlus,
    `g2pw` (a G2PWModel directory, read with the BERT tokenizer) only to read Chinese polyphones with g2pW."""

    gpt: Path
    sovits: Path
    hubert: Path | None  # not needed by a model that reads Whisper features (its config says so)
    bert: Path | None = None
    sv: Path | None = None
    g2pw: Path | None = None

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, version: str = "v2") -> ModelPaths:
        """Paths inside a directory laid out like upstream's `GPT_SoVITS/pretrained_models`."""
        root = Path(model_dir)
        if not root.is_dir():
            raise InputError(f"{root}: no such model directory")
        if version not in _LAYOUT["gpt"]:
            raise InputError(f"unknown model version {version!r}; expected one of {', '.join(_LAYOUT['gpt'])}")

        def find(kind: str) -> Path:
            for rel in _LAYOUT[kind][version]:
                if (root / rel).is_file():
                    return root / rel
            raise InputError(f"{root}: no {version} {kind} file (looked for {', '.join(_LAYOUT[kind][version])})")

        bert = root / _BERT_DIR
        sv = root / _SV_FILE
        return cls(find("gpt"), find("sovits"), root / _HUBERT_DIR, bert if bert.is_dir() else None,
                   sv if sv.is_file() else None)  # g2pW stays off unless asked for (as upstream's shims run it)


class _SkipInit(TorchFunctionMode):
    """While active, `torch.nn.init` functions and in-place random fills leave tensors as they are.

    A model about to receive its weights from a file need not draw random ones first: that took
    0.4 s of CPU for the full-size v2 GPT and as much for SoVITS, per load. Torch-function modes are
    per thread, so a model built at the same time in another thread is initialised as usual.
    """

    _RANDOM_FILLS = frozenset({torch.Tensor.normal_, torch.Tensor.uniform_})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init" or func in self._RANDOM_FILLS:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def gpt_model(ckpt: checkpoints.GPTCheckpoint, path: str | Path, as_stored: Collection[str] = ()) -> T2SModel:
    """The text-to-semantic GPT of a read checkpoint, in fp32 (but the keys in `as_stored`), eval mode."""
    with _SkipInit():
        model = T2SModel(T2SConfig.from_dict(ckpt.config))
    _load_strict(model, ckpt.state_dict, path, as_stored)
    return model.eval()


def load_gpt(path: str | Path) -> T2SModel:
    """The text-to-semantic GPT of an upstream `.ckpt` (or safetensors) file, in fp32, eval mode."""
    return gpt_model(checkpoints.read_gpt(path), path)


def load_int8_gpt(path: str | Path) -> T2SModel:
    """The GPT of a file prepared for int8 decoding on the CPU, its projections quantized once per file.

    The quantized projections are kept by myna.engine.int8_cache; when they are there, the file's own
    projection weights are neither converted nor quantized (the same layers, bit for bit).
    """
    return load_int8_gpt_weights(path)[0]


def load_int8_gpt_weights(path: str | Path) -> tuple[T2SModel, dict[str, tuple] | None]:
    """`load_int8_gpt`, and the kept int8 weights it was built from (None when they were computed now)."""
    from myna.engine import int8_cache
    from myna.engine.precision import prepare_gpt
    from myna.weights.sealed import is_sealed

    ckpt = checkpoints.read_gpt(path)
    # an encrypted model's weights never reach the disk in the clear, quantized or not
    stored = None if is_sealed(path) else int8_cache.cache_file(path)
    quantized = int8_cache.read(stored)
    if quantized is not None:
        try:
            model = gpt_model(ckpt, path, as_stored=int8_cache.projection_keys(quantized, ckpt.state_dict))
            return prepare_gpt(model, "int8", "cpu", int8_weights=quantized), quantized
        except (KeyError, ValueError, RuntimeError) as error:
            log.warning("ignoring the int8 weights kept in %s, which do not fit %s: %s", stored, path, error)
    model = prepare_gpt(gpt_model(ckpt, path), "int8", "cpu")
    int8_cache.write(stored, model)
    return model, None


def sovits_encoders(path: str | Path) -> dict[str, str]:
    """The content and speaker encoders a SoVITS file was trained with (its config's "myna" record)."""
    from myna.features.encoders import encoder_record

    return encoder_record(checkpoints.read_sovits(path).config)


def sovits_model(ckpt: checkpoints.SoVITSCheckpoint, path: str | Path) -> SoVITS:
    """The SoVITS synthesizer of a read checkpoint, in fp32, eval mode."""
    with _SkipInit():
        model = SoVITS(SoVITSConfig.from_dict(ckpt.config, version=ckpt.version))
    _load_strict(model, ckpt.state_dict, path)
    return model.eval()


def load_sovits(path: str | Path) -> SoVITS:
    """The SoVITS synthesizer of an upstream `.pth` (or safetensors) file, in fp32, eval mode."""
    return sovits_model(checkpoints.read_sovits(path), path)


def _load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path,
                 as_stored: Collection[str] = ()) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            details.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)})")
        raise checkpoints.CheckpointError(f"{path}: weights do not fit the model its config describes: {'; '.join(details)}")
    # assign: the model takes the (converted) tensors as they are instead of copying them into its own
    model.load_state_dict({k: v.float() if v.is_floating_point() and k not in as_stored else v
                           for k, v in state.items()}, assign=True)


def load_synthesizer(paths: ModelPaths, device: str = "cpu", precision: str = "fp32",
                     cpu_kernels: bool = True, watermark: bool | None = None) -> Synthesizer:
    """Load every model named in `paths` and return a ready Synthesizer.

    `precision` is the GPT's decoding mode (myna.engine.precision): "fp32" (exact, upstream's tokens),
    "bf16", "int8" (CPU), "fp16" (CUDA) or "auto" (the fast mode for the device). Every mode but
    fp32 also speeds up SoVITS on a CPU (myna.engine.sovits_fast): the flow and vocoder in bf16 where the
    CPU has native bf16 (the vocoder's last stage excepted), else the vocoder's convolutions channels-last
    in fp32 ("nwc"). `cpu_kernels`: let the fast modes' CPU decode step attend with the compiled kernel
    of myna.engine.cpu_kernels (False: torch's attention only). `watermark`: mark every output
    (myna.audio.watermark); None follows the operator's setting (MYNA_WATERMARK, on unless set to 0).
    """
    from myna.engine.precision import prepare_gpt, resolve_precision, use_cuda_graphs, use_flat_decode
    from myna.features.bert import ChineseBert
    from myna.features.encoders import ERES2NET, encoder_record, load_content_encoder, load_speaker_encoder

    times: dict[str, float] = {}
    with _timed(times, "SoVITS"):
        sovits_file = checkpoints.read_sovits(paths.sovits)  # read once: its config names the encoders too
        encoders = encoder_record(sovits_file.config)
    if torch.device(device).type == "cpu" and cpu_kernels and precision != "fp32":
        from myna.engine.cpu_kernels import load_kernels

        with _timed(times, "kernels"):
            load_kernels()  # built (once per machine, about a second) now rather than in the first request
    int8_weights = None
    with _timed(times, "GPT"):
        if resolve_precision(precision, device) == "int8":
            gpt, int8_weights = load_int8_gpt_weights(paths.gpt)
        else:
            gpt = prepare_gpt(load_gpt(paths.gpt).to(device), precision, device)
        if torch.device(device).type == "cpu":
            # less Python per step; int8: the weights packed for the C step now, not in the first request
            use_flat_decode(gpt, cpu_kernels, int8_weights if cpu_kernels else None)
        elif precision != "fp32":
            use_cuda_graphs(gpt)  # the exact mode stays eager
        del int8_weights
    with _timed(times, "SoVITS"):
        sovits = sovits_model(sovits_file, paths.sovits).to(device)
        del sovits_file
        if precision != "fp32" and torch.device(device).type == "cpu":
            from myna.engine.sovits_fast import fast_cpu_mode, prepare_sovits

            prepare_sovits(sovits, fast_cpu_mode())
    with _timed(times, "content encoder"):
        content = load_content_encoder(encoders["content"], paths.hubert, device)
    with _timed(times, "BERT"):
        bert = ChineseBert(paths.bert, device) if paths.bert else None  # reads its weights on first use
    speaker = None
    if sovits.config.is_pro:
        if paths.sv is None and encoders["speaker"] == ERES2NET:
            raise InputError(f"{paths.sovits} is a {sovits.config.version} model: give the speaker-verification model (--sv FILE)")
        with _timed(times, "speaker encoder"):
            speaker = load_speaker_encoder(encoders["speaker"], paths.sv, device)
    polyphones = None
    if paths.g2pw is not None:
        if paths.bert is None:
            raise InputError("g2pW reads text with the BERT tokenizer: give the BERT directory too (--bert)")
        from myna.text.zh.g2pw import load_g2pw

        with _timed(times, "g2pW"):
            polyphones = load_g2pw(paths.g2pw, paths.bert)
    if watermark is None:
        from myna.config import Settings

        watermark = Settings.from_env().watermark
    synth = Synthesizer(gpt, sovits, content, bert, speaker, version=sovits.config.version, polyphones=polyphones,
                        watermarker=Watermarker() if watermark else None)
    synth.load_seconds = times
    return synth


@contextmanager
def _timed(times: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the block to times[name]."""
    start = time.perf_counter()
    try:
        yield
    finally:
        times[name] = times.get(name, 0.0) + time.perf_counter() - start
