"""Voice names: one normal form, visible characters only, unique whatever their case.

A name is NFKC-normalized (compatibility forms such as full-width letters become their plain form)
and trimmed. Control and format characters (Unicode categories C*: bidi overrides, zero-width
characters, NUL, ...) and line or paragraph separators are refused, so a name looks like what it
is. Names are unique ignoring case (Unicode case folding after NFKC): "Anna" and "ＡＮＮＡ" are one
name. The registry stores a keyed hash of that folded form to enforce it, so an encrypted registry
never keeps a name in the clear.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

from myna.errors import InputError

_VOICE_ID = re.compile(r"[0-9a-f]{32}")
_PLAIN_SECRET = b"myna voice name"  # unencrypted registries: the names are in the clear anyway


def check_name(name: str | None, max_chars: int) -> str:
    """The stored form of a voice name, or an `InputError` saying what to change."""
    name = unicodedata.normalize("NFKC", name or "").strip()
    if not name:
        raise InputError("the voice needs a name: give a non-empty name")
    if len(name) > max_chars:
        raise InputError(f"the voice name is {len(name)} characters; at most {max_chars} are allowed")
    hidden = [ch for ch in name if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp")]
    if hidden:
        codes = ", ".join(sorted({f"U+{ord(ch):04X}" for ch in hidden}))
        raise InputError(f"the voice name must be one line of visible text; it contains control or format "
                         f"characters ({codes})")
    if _VOICE_ID.fullmatch(name):
        raise InputError("the voice name looks like a voice id (32 hex digits); choose another name")
    return name


def name_key(name: str, secret: bytes | None = None) -> str:
    """The key that makes names unique: a hash (keyed by `secret` when given) of the case-folded NFKC name."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).strip().casefold())
    return hmac.new(secret or _PLAIN_SECRET, folded.encode("utf-8"), hashlib.sha256).hexdigest()
