"""Model files encrypted at rest: AES-256-GCM in chunks, so no file is ever decrypted onto disk.

A sealed file is a 38-byte header followed by the chunks:

    magic b"MYNASEAL" | format version (1 byte, 1) | algorithm (1 byte, 1 = AES-256-GCM)
    | chunk size (4 bytes, big-endian) | key id (8 bytes) | nonce prefix (8 random bytes)
    | plaintext size (8 bytes, big-endian)

Chunk i holds `chunk size` plaintext bytes (the last one fewer; an empty file has one empty chunk)
encrypted with the nonce `prefix | i` (4 bytes) and a 16-byte tag. Its associated data is the header,
the chunk index and a last-chunk flag, so chunks cannot be reordered, dropped, swapped between files
or cut off at the end without the tag check failing. The key id (the first 8 bytes of
HMAC-SHA256(key, "myna model key id")) tells a wrong key apart from a damaged file without revealing
the key. Working chunk by chunk keeps memory at one plaintext copy plus one chunk when reading, and
one chunk when sealing or re-keying a file on disk.

Keys are 32 random bytes, given as a file of 64 hex digits (or the raw bytes) or as 64 hex digits in
an environment variable (see `myna.config`); `myna models keygen` makes one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from myna.atomic import atomic_output
from myna.errors import ModelsError

MAGIC = b"MYNASEAL"
FORMAT_VERSION = 1
_AES_256_GCM = 1
_HEADER = struct.Struct(">8sBBI8s8sQ")
HEADER_BYTES = _HEADER.size
KEY_BYTES = 32
TAG_BYTES = 16
DEFAULT_CHUNK = 4 * 2**20
_MAX_CHUNK = 256 * 2**20


class SealError(ModelsError):
    """A sealed model file is damaged, truncated, of an unknown format version, or was altered."""


class ModelKeyError(SealError):
    """The model key is missing, malformed, or not the key the file was sealed with."""


def parse_key(raw: bytes | str, source: str) -> bytes:
    """A key from 64 hex digits (surrounding whitespace ignored) or 32 raw bytes; `source` names it in errors."""
    data = raw.encode("ascii", "replace") if isinstance(raw, str) else raw
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if isinstance(raw, bytes) and len(raw) == KEY_BYTES:
        return raw
    raise ModelKeyError(f"{source}: a model key is {2 * KEY_BYTES} hex digits (make one with `myna models keygen`)")


def read_key_file(path: str | Path) -> bytes:
    """The key in a key file (64 hex digits or 32 raw bytes)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ModelKeyError(f"{path}: cannot read the model key ({exc.strerror or exc})") from exc
    return parse_key(raw, str(path))


def generate_key() -> bytes:
    """A new random key."""
    return secrets.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> bytes:
    """The 8-byte public fingerprint of a key, stored in every file it seals."""
    return hmac.new(key, b"myna model key id", hashlib.sha256).digest()[:8]


def is_sealed(path: str | Path) -> bool:
    """Whether `path` starts with the sealed-file magic (False for unreadable or short files)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def seal_stream(source: BinaryIO, size: int, sink: BinaryIO, key: bytes, chunk_size: int = DEFAULT_CHUNK) -> None:
    """Encrypt `size` bytes read from `source` into `sink`, one chunk in memory at a time."""
    aead = _aead(key)
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, _AES_256_GCM, chunk_size, key_id(key), os.urandom(8), size)
    sink.write(header)
    prefix = header[22:30]
    for index, last, length in _chunks(size, chunk_size):
        block = source.read(length)
        if len(block) != length:
            raise SealError(f"the input ended after {index * chunk_size + len(block)} of {size} bytes")
        sink.write(aead.encrypt(prefix + struct.pack(">I", index), block, _associated(header, index, last)))


def open_stream(source: BinaryIO, label: str, key: bytes | None) -> tuple[int, Iterator[bytes]]:
    """The plaintext size of a sealed stream and an iterator over its chunks, each checked before it is yielded."""
    header = source.read(HEADER_BYTES)
    _, _, _, chunk_size, stored_id, prefix, size = _parse_header(header, label)
    if key is None:
        raise ModelKeyError(
            f"{label}: the model file is encrypted; give its key with MYNA_MODEL_KEY_FILE (a key file) or "
            "MYNA_MODEL_KEY (64 hex digits)")
    if key_id(key) != stored_id:
        raise ModelKeyError(
            f"{label}: sealed with another key (key id {stored_id.hex()}, the key given has id {key_id(key).hex()}); "
            "give the key it was encrypted with")
    return size, _plain_chunks(source, label, _aead(key), header, chunk_size, prefix, size)


def read_sealed(path: str | Path, key: bytes | None) -> bytearray:
    """The plaintext of a sealed file, decrypted into memory only."""
    try:
        with open(path, "rb") as handle:
            size, chunks = open_stream(handle, str(path), key)
            plain, offset = bytearray(size), 0
            for block in chunks:
                plain[offset : offset + len(block)] = block
                offset += len(block)
            return plain
    except OSError as exc:
        raise SealError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def write_sealed(path: str | Path, data: bytes | bytearray | memoryview, key: bytes,
                 chunk_size: int = DEFAULT_CHUNK) -> None:
    """Encrypt in-memory `data` into `path` (written under a temporary name, then renamed)."""
    import io

    view = memoryview(data)
    with _replacing(Path(path)) as sink:
        seal_stream(io.BytesIO(view), len(view), sink, key, chunk_size)


def seal_file(source: str | Path, target: str | Path, key: bytes, chunk_size: int = DEFAULT_CHUNK) -> None:
    """Encrypt the file `source` into `target` (may be the same path: replaced only when complete)."""
    source = Path(source)
    if is_sealed(source):
        raise SealError(f"{source}: already encrypted")
    try:
        with open(source, "rb") as handle, _replacing(Path(target)) as sink:
            seal_stream(handle, os.fstat(handle.fileno()).st_size, sink, key, chunk_size)
    except OSError as exc:
        raise SealError(f"{source}: cannot encrypt ({exc.strerror or exc}); nothing was changed") from exc


def unseal_file(source: str | Path, target: str | Path, key: bytes) -> None:
    """Decrypt the file `source` into `target` (may be the same path), chunk by chunk."""
    try:
        with open(source, "rb") as handle, _replacing(Path(target)) as sink:
            for block in open_stream(handle, str(source), key)[1]:
                sink.write(block)
    except OSError as exc:
        raise SealError(f"{source}: cannot decrypt ({exc.strerror or exc}); nothing was changed") from exc


def reseal_file(path: str | Path, old_key: bytes, new_key: bytes) -> None:
    """Re-encrypt `path` from `old_key` to `new_key` in place, never holding plaintext on disk."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            chunk_size = _parse_header(handle.read(HEADER_BYTES), str(path))[3]
            handle.seek(0)
            size, chunks = open_stream(handle, str(path), old_key)
            with _replacing(path) as sink:
                seal_stream(_ChunkReader(chunks), size, sink, new_key, chunk_size)
    except OSError as exc:
        raise SealError(f"{path}: cannot re-encrypt ({exc.strerror or exc}); nothing was changed") from exc


def key_id_of(path: str | Path) -> str:
    """The hex key id stored in a sealed file's header."""
    with open(path, "rb") as handle:
        return _parse_header(handle.read(HEADER_BYTES), str(path))[4].hex()


# -- internals -------------------------------------------------------------------------------------


class _ChunkReader:
    """A minimal readable stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            block = next(self._chunks, None)
            if block is None:
                break
            self._buffer += block
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _plain_chunks(source: BinaryIO, label: str, aead, header: bytes, chunk_size: int, prefix: bytes,
                  size: int) -> Iterator[bytes]:
    from cryptography.exceptions import InvalidTag

    for index, last, length in _chunks(size, chunk_size):
        block = source.read(length + TAG_BYTES)
        if len(block) != length + TAG_BYTES:
            raise SealError(f"{label}: the encrypted file is truncated (chunk {index} is incomplete)")
        try:
            yield aead.decrypt(prefix + struct.pack(">I", index), block, _associated(header, index, last))
        except InvalidTag as exc:
            raise SealError(f"{label}: chunk {index} fails its integrity check: the file was altered or damaged") from exc
    if source.read(1):
        raise SealError(f"{label}: unexpected bytes after the last chunk: the file was altered")


def _parse_header(header: bytes, label: str) -> tuple[bytes, int, int, int, bytes, bytes, int]:
    if len(header) < HEADER_BYTES or not header.startswith(MAGIC):
        raise SealError(f"{label}: not an encrypted myna model file")
    fields = _HEADER.unpack(header[:HEADER_BYTES])
    _, version, algorithm, chunk_size = fields[:4]
    if version != FORMAT_VERSION or algorithm != _AES_256_GCM:
        raise SealError(f"{label}: encrypted with format {version}/algorithm {algorithm}, which this myna does not "
                        f"read (it reads format {FORMAT_VERSION}); upgrade myna")
    if not 0 < chunk_size <= _MAX_CHUNK:
        raise SealError(f"{label}: damaged header (chunk size {chunk_size})")
    return fields


def _chunks(size: int, chunk_size: int) -> Iterator[tuple[int, bool, int]]:
    """(index, is_last, plaintext length) of each chunk; an empty file has one empty chunk."""
    count = max(1, -(-size // chunk_size))
    if count >= 2**32:
        raise SealError("the file is too large for its chunk size")
    for index in range(count):
        yield index, index == count - 1, min(chunk_size, size - index * chunk_size)


def _associated(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">QB", index, int(last))


def _aead(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise ModelKeyError(f"a model key is {KEY_BYTES} bytes, got {len(key)}")
    return AESGCM(bytes(key))


@contextmanager
def _replacing(path: Path) -> Iterator[BinaryIO]:
    """An open file beside `path` that replaces it on success and is removed on failure (myna.atomic)."""
    with atomic_output(path) as partial, open(partial, "wb") as handle:
        yield handle
