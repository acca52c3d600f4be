"""Text front-end: text -> phonemes (+ ids, word2ph, normalized text) as upstream GPT-SoVITS v1/v2.

- `g2p(text, language)`: one language (zh, en, ja), identical to upstream's per-language cleaner.
- `g2p_mixed(text, mode)`: mixed-language text with upstream's language modes (auto, zh, ja, ...).
- `myna.text.split`: cutting long input into sentences the way upstream's cut methods do.
"""

from myna.text.frontend import LANGUAGES, Phonemes, g2p
from myna.text.mixed import MODES, g2p_mixed

__all__ = ["LANGUAGES", "MODES", "Phonemes", "g2p", "g2p_mixed"]
