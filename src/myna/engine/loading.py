"""Build a Synthesizer from model files or from a directory laid out like upstream's `pretrained_models`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from myna import checkpoints
from myna.audio.watermark import Watermarker
from myna.engine.synthesizer import Synthesizer
from myna.errors import InputError
from myna.models.sovits import SoVITS, SoVITSConfig
from myna.models.t2s import T2SConfig, T2SModel

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


def load_gpt(path: str | Path) -> T2SModel:
    """The text-to-semantic GPT of an upstream `.ckpt` (or safetensors) file, in fp32, eval mode."""
    ckpt = checkpoints.read_gpt(path)
    model = T2SModel(T2SConfig.from_dict(ckpt.config))
    _load_strict(model, ckpt.state_dict, path)
    return model.eval()


def sovits_encoders(path: str | Path) -> dict[str, str]:
    """The content and speaker encoders a SoVITS file was trained with (its config's "myna" record)."""
    from myna.features.encoders import encoder_record

    return encoder_record(checkpoints.read_sovits(path).config)


def load_sovits(path: str | Path) -> SoVITS:
    """The SoVITS synthesizer of an upstream `.pth` (or safetensors) file, in fp32, eval mode."""
    ckpt = checkpoints.read_sovits(path)
    model = SoVITS(SoVITSConfig.from_dict(ckpt.config, version=ckpt.version))
    _load_strict(model, ckpt.state_dict, path)
    return model.eval()


def _load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
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
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})


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
    from myna.engine.precision import prepare_gpt, use_cuda_graphs, use_flat_decode
    from myna.features.bert import ChineseBert
    from myna.features.encoders import ERES2NET, load_content_encoder, load_speaker_encoder

    encoders = sovits_encoders(paths.sovits)
    gpt = prepare_gpt(load_gpt(paths.gpt).to(device), precision, device)
    if torch.device(device).type == "cpu":
        use_flat_decode(gpt, fused_attention=cpu_kernels)  # less Python per step
        if cpu_kernels and precision != "fp32":
            from myna.engine.cpu_kernels import load_kernels

            load_kernels()  # built (once per machine, about a second) now rather than in the first request
    elif precision != "fp32":
        use_cuda_graphs(gpt)  # the exact mode stays eager
    sovits = load_sovits(paths.sovits).to(device)
    if precision != "fp32" and torch.device(device).type == "cpu":
        from myna.engine.sovits_fast import fast_cpu_mode, prepare_sovits

        prepare_sovits(sovits, fast_cpu_mode())
    content = load_content_encoder(encoders["content"], paths.hubert, device)
    bert = ChineseBert(paths.bert, device) if paths.bert else None
    speaker = None
    if sovits.config.is_pro:
        if paths.sv is None and encoders["speaker"] == ERES2NET:
            raise InputError(f"{paths.sovits} is a {sovits.config.version} model: give the speaker-verification model (--sv FILE)")
        speaker = load_speaker_encoder(encoders["speaker"], paths.sv, device)
    polyphones = None
    if paths.g2pw is not None:
        if paths.bert is None:
            raise InputError("g2pW reads text with the BERT tokenizer: give the BERT directory too (--bert)")
        from myna.text.zh.g2pw import load_g2pw

        polyphones = load_g2pw(paths.g2pw, paths.bert)
    if watermark is None:
        from myna.config import Settings

        watermark = Settings.from_env().watermark
    return Synthesizer(gpt, sovits, content, bert, speaker, version=sovits.config.version, polyphones=polyphones,
                       watermarker=Watermarker() if watermark else None)
