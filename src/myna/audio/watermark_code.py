"""The watermark's bits: a keyed pseudo-random stream, and the payload's error-correcting code.

* `KeyStream`: bytes from SHA-256 of (key, counter): the same key gives the same pattern on every
  machine and with every numpy version (numpy's generators promise no stable stream across versions).
* The payload (32 bits) is protected by a CRC-16 (CCITT, `binascii.crc_hqx`) and a rate-1/3
  convolutional code (constraint length 7, generators 133/171/165 octal, as in LTE), terminated
  with 6 zero bits, decoded by a soft-decision Viterbi search: 32 + 16 + 6 = 54 bits -> 162 coded bits.
  A soft decoder gains several dB over repetition alone; the CRC tells a decoded payload from noise.
"""

from __future__ import annotations

import binascii
import hashlib

import numpy as np

PAYLOAD_BITS = 32
CRC_BITS = 16
_K = 7  # constraint length
_GENERATORS = (0o133, 0o171, 0o165)
_INFO_BITS = PAYLOAD_BITS + CRC_BITS
CODED_BITS = (_INFO_BITS + _K - 1) * len(_GENERATORS)


class KeyStream:
    """Deterministic pseudo-random numbers from a key (SHA-256 in counter mode)."""

    def __init__(self, key: bytes, label: str):
        self._seed = hashlib.sha256(key).digest() + label.encode()
        self._counter = 0

    def bytes(self, count: int) -> bytes:
        """The next `count` bytes of the stream."""
        out = bytearray()
        while len(out) < count:
            out += hashlib.sha256(self._seed + self._counter.to_bytes(8, "little")).digest()
            self._counter += 1
        return bytes(out[:count])

    def signs(self, count: int) -> np.ndarray:
        """`count` values of +1.0 or -1.0."""
        bits = np.unpackbits(np.frombuffer(self.bytes((count + 7) // 8), dtype=np.uint8))[:count]
        return 1.0 - 2.0 * bits.astype(np.float64)

    def permutation(self, count: int) -> np.ndarray:
        """A permutation of range(count) (Fisher-Yates on 32-bit draws; the modulo bias is < 1e-5)."""
        draws = np.frombuffer(self.bytes(4 * count), dtype="<u4")
        order = np.arange(count)
        for i in range(count - 1, 0, -1):
            j = int(draws[i]) % (i + 1)
            order[i], order[j] = order[j], order[i]
        return order


def _payload_bits(payload: int) -> np.ndarray:
    data = payload.to_bytes(4, "big")
    word = data + binascii.crc_hqx(data, 0xFFFF).to_bytes(2, "big")
    return np.unpackbits(np.frombuffer(word, dtype=np.uint8)).astype(np.int64)


def _parity(x: np.ndarray | int) -> np.ndarray:
    """Parity of each integer's bits (ints below 2**7)."""
    x = np.asarray(x)
    x = x ^ (x >> 4)
    x = x ^ (x >> 2)
    x = x ^ (x >> 1)
    return x & 1


def encode_payload(payload: int) -> np.ndarray:
    """The CODED_BITS code bits (0/1) carrying a 32-bit payload."""
    if not 0 <= payload < 2**PAYLOAD_BITS:
        raise ValueError(f"a watermark payload is a {PAYLOAD_BITS}-bit unsigned integer, got {payload}")
    bits = np.concatenate([_payload_bits(payload), np.zeros(_K - 1, np.int64)])
    state = 0  # the last K-1 input bits, newest in the highest bit of the register below
    out = np.zeros((len(bits), len(_GENERATORS)), np.int64)
    for t, bit in enumerate(bits):
        register = (int(bit) << (_K - 1)) | state
        out[t] = [_parity(register & g) for g in _GENERATORS]
        state = register >> 1
    return out.reshape(-1)


def _trellis_signs() -> np.ndarray:
    """For each (state, input bit): the coded signs (+1 for bit 0, -1 for bit 1) it emits."""
    states = np.arange(2 ** (_K - 1))
    signs = np.zeros((len(states), 2, len(_GENERATORS)))
    for bit in (0, 1):
        register = (bit << (_K - 1)) | states
        for j, g in enumerate(_GENERATORS):
            signs[:, bit, j] = 1.0 - 2.0 * _parity(register & g)
    return signs


_SIGNS = _trellis_signs()


def decode_payload(soft: np.ndarray) -> tuple[int, bool]:
    """The most likely payload given CODED_BITS soft values (positive = bit 0), and whether its CRC checks."""
    soft = np.asarray(soft, dtype=np.float64).reshape(-1, len(_GENERATORS))
    n_states = 2 ** (_K - 1)
    metric = np.full(n_states, -np.inf)
    metric[0] = 0.0
    back_state = np.zeros((len(soft), n_states), np.int64)
    back_bit = np.zeros((len(soft), n_states), np.int64)
    # next state n = (bit << K-2) | (state >> 1): its two predecessors differ in their lowest bit
    half = n_states // 2
    targets = np.arange(n_states)
    enter_bit = targets // half
    first = (targets % half) * 2
    for t, values in enumerate(soft):
        gains = metric[:, None] + _SIGNS @ values  # (state, bit)
        if t >= _INFO_BITS:  # tail: only zeros enter the register
            gains[:, 1] = -np.inf
        from_first, from_second = gains[first, enter_bit], gains[first + 1, enter_bit]
        take_second = from_second > from_first
        back_state[t] = first + take_second
        back_bit[t] = enter_bit
        metric = np.where(take_second, from_second, from_first)
    state, bits = 0, []
    for t in range(len(soft) - 1, -1, -1):
        bits.append(back_bit[t, state])
        state = back_state[t, state]
    info = np.array(bits[::-1][:_INFO_BITS], dtype=np.uint8)
    word = np.packbits(info).tobytes()
    data, crc = word[:4], int.from_bytes(word[4:], "big")
    return int.from_bytes(data, "big"), binascii.crc_hqx(data, 0xFFFF) == crc
