"""Voice registry: reference clips, their consent records, encryption at rest and erasure."""

from myna.voices.audio_checks import ClipLimits
from myna.voices.crypto import VoiceKeyError
from myna.voices.registry import Consent, UnknownVoiceError, VoiceNameTaken, VoiceRecord, VoiceRegistry
from myna.voices.store import VoiceStorageError

__all__ = [
    "ClipLimits",
    "Consent",
    "UnknownVoiceError",
    "VoiceKeyError",
    "VoiceNameTaken",
    "VoiceRecord",
    "VoiceRegistry",
    "VoiceStorageError",
]
