"""Text -> synthesis fragments: split like upstream, phonemize each piece, attach BERT features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from myna.errors import InputError
from myna.features.bert import ChineseBert, zero_features
from myna.text import g2p_mixed
from myna.text.frontend import Phonemes
from myna.text.mixed import MODES
from myna.text.split import SENTENCE_MARKS, collapse_punctuation, split_text

if TYPE_CHECKING:
    from myna.text.zh.g2pw import G2PW

# Upstream's api_v2 language codes: each one is a text mode of myna.text.mixed, under the same name.
LANGUAGES = MODES


@dataclass
class Fragment:
    """One piece of text as the models take it: phoneme ids (N,) and BERT features (1024, N)."""

    phone_ids: torch.Tensor
    bert: torch.Tensor
    norm_text: str


def check_language(lang: str) -> str:
    """Return the text mode of an api_v2 language code, or raise with the accepted codes."""
    if lang not in LANGUAGES:
        raise InputError(f"unsupported language {lang!r}; expected one of {', '.join(LANGUAGES)}")
    return lang


def phonemes_to_fragment(phonemes: Phonemes, bert: ChineseBert | None) -> Fragment:
    """Attach BERT features: real ones for Chinese runs, zeros for the rest (as upstream)."""
    parts = []
    for run in phonemes.segments or [phonemes]:
        if run.language == "zh":
            if bert is None:
                raise InputError("Chinese text needs the Chinese BERT model: give a BERT directory (--bert)")
            parts.append(bert.features(run.norm_text, run.word2ph))
        else:
            parts.append(zero_features(len(run.phones)))
    features = torch.cat(parts, dim=1) if parts else zero_features(0)
    return Fragment(torch.tensor(phonemes.ids, dtype=torch.long), features, phonemes.norm_text)


def text_fragment(
    text: str, lang: str, version: str, bert: ChineseBert | None, polyphones: G2PW | None = None
) -> Fragment:
    """One piece of text (no splitting) -> fragment; `polyphones` reads Chinese with g2pW."""
    return phonemes_to_fragment(g2p_mixed(text, check_language(lang), version, polyphones), bert)


def prompt_text(text: str, lang: str) -> str:
    """The reference transcript as upstream reads it: final punctuation added if missing."""
    text = text.strip("\n")
    if not text.strip():
        raise InputError("the reference text is empty; give its transcript, or none at all for ref-free mode")
    if text[-1] not in SENTENCE_MARKS:
        text += "." if lang == "en" else "。"
    return text


def split_fragments(
    text: str, lang: str, method: str, version: str, bert: ChineseBert | None, polyphones: G2PW | None = None
) -> list[Fragment]:
    """Target text -> fragments in order; pieces that phonemize to nothing are dropped (as upstream)."""
    check_language(lang)
    pieces = split_text(collapse_punctuation(text), lang, method)
    return [fragment for piece in pieces if (fragment := piece_fragment(piece, lang, version, bert, polyphones))]


def piece_fragment(
    piece: str, lang: str, version: str, bert: ChineseBert | None, polyphones: G2PW | None = None
) -> Fragment | None:
    """One cut piece -> its fragment, or None when it phonemizes to nothing (such pieces are dropped, as upstream)."""
    if not piece.strip():
        return None
    fragment = text_fragment(piece, lang, version, bert, polyphones)
    return fragment if fragment.phone_ids.numel() and fragment.norm_text else None
