"""ASR backends: faster-whisper and whisperX behind ``AsrBackend`` (base.py)."""
