"""Encryption at rest for voice clips: AES-256-GCM with a random nonce per file.

A sealed file is `MAGIC | nonce (12 bytes) | ciphertext+tag`. The associated data binds a file to
its voice id and file name, so a sealed clip copied onto another voice does not decrypt.
"""

from __future__ import annotations

import os
from pathlib import Path

from myna.errors import ServerFault

MAGIC = b"MYNAENC1"
_NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_CHECK_PLAINTEXT = b"myna voice registry key check"


class VoiceKeyError(ServerFault):
    """The encryption key is missing, malformed or not the one the voices were sealed with."""

    code = "voice_key_error"


class ClipCipher:
    """Seals and opens clip bytes with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
            raise VoiceKeyError(f"the voice encryption key must be {KEY_BYTES} random bytes (got {len(key)} bytes)")
        self._aead = AESGCM(bytes(key))

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """Encrypt `plaintext` bound to `context` (e.g. voice id and version)."""
        nonce = os.urandom(_NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        """Decrypt what `seal` produced for the same context, or raise `VoiceKeyError`."""
        from cryptography.exceptions import InvalidTag

        if not sealed.startswith(MAGIC) or len(sealed) < len(MAGIC) + _NONCE_BYTES + 16:
            raise VoiceKeyError(f"{context}: the stored clip is not an encrypted myna clip")
        nonce = sealed[len(MAGIC) : len(MAGIC) + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[len(MAGIC) + _NONCE_BYTES :], context.encode())
        except InvalidTag as exc:
            raise VoiceKeyError(
                f"{context}: the stored clip does not decrypt with this key (wrong key, or the file was altered)"
            ) from exc

    def key_check(self) -> bytes:
        """A token stored with the registry so a wrong key is caught at start, not at first use."""
        return self.seal(_KEY_CHECK_PLAINTEXT, "key-check")

    def verify(self, token: bytes) -> None:
        """Raise `VoiceKeyError` unless `token` came from `key_check` with this key."""
        try:
            self.open(token, "key-check")
        except VoiceKeyError as exc:
            raise VoiceKeyError(
                "the voice encryption key is not the one this voice folder was created with; "
                "start with the original key"
            ) from exc


def generate_key() -> bytes:
    """A new random key."""
    return os.urandom(KEY_BYTES)


def read_key(path: str | Path) -> bytes:
    """A key from a file holding 64 hex digits (or the 32 raw bytes); raise `VoiceKeyError` if unusable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VoiceKeyError(f"{path}: cannot read the voice encryption key ({exc})") from exc
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if len(data) == KEY_BYTES:
        return data
    raise VoiceKeyError(
        f"{path}: a voice encryption key file holds {2 * KEY_BYTES} hex digits "
        '(make one with: python -c "import secrets; print(secrets.token_hex(32))")'
    )
