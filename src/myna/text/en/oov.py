"""Neural pronunciation of out-of-vocabulary words: g2p_en's GRU encoder-decoder, in numpy.

The weights are g2p_en's `checkpoint20.npz` (Apache-2.0), read from the installed package. The
model is re-implemented here instead of calling `g2p_en.G2p.predict` because importing `g2p_en`
triggers `nltk.download` (it must work offline) and loads a second copy of the CMU dictionary.
The arithmetic follows the original step for step in float32, so predictions are identical:
a one-layer GRU reads the letters and an end marker, then a one-layer GRU decoder, started from
the encoder's last state and a start symbol, greedily emits at most 20 phonemes until the end
symbol.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from myna.text.en.lexicon import package_dir

LETTERS = ("<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz")
# The decoder's output alphabet, in the checkpoint's order (its rows are these indices).
PHONEMES = (
    "<pad>", "<unk>", "<s>", "</s>",
    "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0", "AO1", "AO2",
    "AW0", "AW1", "AW2", "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1", "EH2",
    "ER0", "ER1", "ER2", "EY0", "EY1", "EY2", "F", "G", "HH", "IH0", "IH1", "IH2",
    "IY0", "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1", "OW2", "OY0", "OY1", "OY2",
    "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1", "UW2",
    "V", "W", "Y", "Z", "ZH",
)
_LETTER_INDEX = {letter: index for index, letter in enumerate(LETTERS)}
_UNKNOWN_LETTER = _LETTER_INDEX["<unk>"]
_END_OF_WORD = _LETTER_INDEX["</s>"]
_START = PHONEMES.index("<s>")
_STOP = PHONEMES.index("</s>")
MAX_PHONEMES = 20


@dataclass(frozen=True)
class _Gru:
    """One GRU layer's weights (gate order r, z, n as in PyTorch)."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Next hidden state for input row `x` (1, E) and state `h` (1, H)."""
        from_input = np.matmul(x, self.w_ih.T) + self.b_ih
        from_state = np.matmul(h, self.w_hh.T) + self.b_hh
        split = from_input.shape[-1] * 2 // 3
        gates = 1 / (1 + np.exp(-(from_input[:, :split] + from_state[:, :split])))
        reset, update = np.split(gates, 2, -1)
        candidate = np.tanh(from_input[:, split:] + reset * from_state[:, split:])
        return (1 - update) * candidate + update * h


@dataclass(frozen=True)
class _Model:
    letter_embedding: np.ndarray
    encoder: _Gru
    phoneme_embedding: np.ndarray
    decoder: _Gru
    out_weight: np.ndarray
    out_bias: np.ndarray


@cache
def _model() -> _Model:
    with np.load(package_dir("g2p_en") / "checkpoint20.npz") as weights:
        w = {name: weights[name] for name in weights.files}
    return _Model(
        letter_embedding=w["enc_emb"],
        encoder=_Gru(w["enc_w_ih"], w["enc_w_hh"], w["enc_b_ih"], w["enc_b_hh"]),
        phoneme_embedding=w["dec_emb"],
        decoder=_Gru(w["dec_w_ih"], w["dec_w_hh"], w["dec_b_ih"], w["dec_b_hh"]),
        out_weight=w["fc_w"],
        out_bias=w["fc_b"],
    )


def predict(word: str) -> list[str]:
    """Predicted ARPAbet phonemes of lower-case `word` (other characters read as unknown)."""
    model = _model()
    letters = [_LETTER_INDEX.get(ch, _UNKNOWN_LETTER) for ch in word] + [_END_OF_WORD]
    state = np.zeros((1, model.encoder.w_hh.shape[-1]), np.float32)
    for index in letters:
        state = model.encoder.step(model.letter_embedding[index][None, :], state)
    phonemes: list[str] = []
    previous = _START
    for _ in range(MAX_PHONEMES):
        state = model.decoder.step(model.phoneme_embedding[previous][None, :], state)
        logits = np.matmul(state, model.out_weight.T) + model.out_bias
        previous = int(logits.argmax())
        if previous == _STOP:
            break
        phonemes.append(PHONEMES[previous])
    return phonemes
