"""The HTTP server: upstream-compatible /tts, OpenAI-compatible /v1/audio/speech, voices, operations."""
