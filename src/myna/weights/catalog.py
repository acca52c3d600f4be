"""What upstream GPT-SoVITS released, where it lives, and the hashes myna pins.

File paths are relative to upstream's `GPT_SoVITS/pretrained_models` folder, which is also the layout of
the Hugging Face repository `lj1995/GPT-SoVITS` and of its ModelScope mirror, so one path names a file
in every source and on disk. Only the files a version needs for inference and fine-tuning are listed
(the discriminators `s2D*.pth` are not read by myna).
"""

from __future__ import annotations

from dataclasses import dataclass

VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")  # oldest first: "newest pulled" means last in this order
NEWEST = VERSIONS[-1]
G2PW = "g2pw"  # the optional polyphone model, pulled with --g2pw and unpacked into G2PWModel/
G2PW_DIR = "G2PWModel"
G2PW_ARCHIVE = "G2PWModel.zip"

_HUBERT = ("chinese-hubert-base/config.json", "chinese-hubert-base/preprocessor_config.json",
           "chinese-hubert-base/pytorch_model.bin")
_BERT = ("chinese-roberta-wwm-ext-large/config.json", "chinese-roberta-wwm-ext-large/pytorch_model.bin",
         "chinese-roberta-wwm-ext-large/tokenizer.json")
_SV = "sv/pretrained_eres2netv2w24s4ep4.ckpt"

# GPT first, SoVITS second (myna.engine.loading finds them under the same names).
VERSION_FILES: dict[str, tuple[str, ...]] = {
    "v1": ("s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt", "s2G488k.pth", *_HUBERT, *_BERT),
    "v2": ("gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt",
           "gsv-v2final-pretrained/s2G2333k.pth", *_HUBERT, *_BERT),
    "v2Pro": ("s1v3.ckpt", "v2Pro/s2Gv2Pro.pth", _SV, *_HUBERT, *_BERT),
    "v2ProPlus": ("s1v3.ckpt", "v2Pro/s2Gv2ProPlus.pth", _SV, *_HUBERT, *_BERT),
}

# Approximate download per version, from the sizes published on the Hugging Face file pages (v2Pro and
# v2ProPlus partly estimated from their parameter counts); a pull prints the exact figure first.
ABOUT_SIZE = {"v1": "1.1 GB", "v2": "1.1 GB", "v2Pro": "1.4 GB", "v2ProPlus": "1.4 GB"}


@dataclass(frozen=True)
class Source:
    """Where a pull downloads from: a Hugging Face-style hub (metadata + sha256 headers) or plain HTTPS."""

    name: str
    kind: str  # "hub": huggingface_hub reads the Hub's headers; "https": plain GET, hashes from PINS only
    models_repo: str
    g2pw_repo: str
    revision: str


SOURCES = {
    "hf": Source("hf", "hub", "lj1995/GPT-SoVITS", "XXXXRT/GPT-SoVITS-Pretrained", "main"),
    "hf-mirror": Source("hf-mirror", "hub", "lj1995/GPT-SoVITS", "XXXXRT/GPT-SoVITS-Pretrained", "main"),
    # ModelScope mirrors lj1995/GPT-SoVITS as AI-ModelScope/GPT-SoVITS (same paths); upstream's install.sh
    # fetches G2PWModel.zip from XXXXRT/GPT-SoVITS-Pretrained there.
    "modelscope": Source("modelscope", "https", "AI-ModelScope/GPT-SoVITS", "XXXXRT/GPT-SoVITS-Pretrained", "master"),
}
HF_MIRROR_ENDPOINT = "https://hf-mirror.com"


@dataclass(frozen=True)
class Pin:
    """A file's sha256 (and byte size when published) as read from a public page of the release."""

    sha256: str
    size: int | None
    page: str


# Read from lj1995/GPT-SoVITS's own pages on huggingface.co (file pages and LFS pointers in commits).
# Files without a pin are verified against the hub's announced sha256 only, and ModelScope refuses them.
PINS: dict[str, Pin] = {
    "s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt": Pin(
        "b1c1e17e9c99547a89388f72048cd6e1b41b5a18b170e86a46dfde0324d63eb1", None,
        "https://huggingface.co/lj1995/GPT-SoVITS/blob/46a2d14752cb09f031a661e4c0320b71e79851ec/"
        "s1bert25hz-2kh-longer-epoch%3D68e-step%3D50232.ckpt"),
    "gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt": Pin(
        "732f94e63b148066e24c7f9d2637f3374083e637635f07fbdb695dee20ddbe1f", 155315150,
        "https://huggingface.co/lj1995/GPT-SoVITS/commit/7ff0a53d67970291b581d758e3dfeda938203949"),
    "gsv-v2final-pretrained/s2G2333k.pth": Pin(
        "924fdccaa3c574bf139c25c9759aa1ed3b3f99e19a7c529ee996c2bc17663695", 106035259,
        "https://huggingface.co/lj1995/GPT-SoVITS/commit/7ff0a53d67970291b581d758e3dfeda938203949"),
    "s1v3.ckpt": Pin(
        "87133414860ea14ff6620c483a3db5ed07b44be42e2c3fcdad65523a729a745a", 155284856,
        "https://huggingface.co/lj1995/GPT-SoVITS/commit/3725636c7664d0a1514285f768036298ecb0f204"),
}


def check_name(name: str) -> str:
    """`name` if it is a version or "g2pw"; else an InputError listing the choices."""
    from myna.errors import InputError

    if name in VERSIONS or name == G2PW:
        return name
    raise InputError(f"unknown model {name!r}: choose one of {', '.join(VERSIONS)} (or {G2PW})")


def pull_command(name: str = NEWEST, options: str = "") -> str:
    """The command that fetches `name` (with `options`), and its approximate size, for error messages."""
    about = f" (about {ABOUT_SIZE[name]} from Hugging Face)" if name in ABOUT_SIZE else ""
    return f"`myna models pull {name}{' ' + options if options else ''}`{about}"
