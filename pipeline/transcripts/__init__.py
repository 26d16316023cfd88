"""Transcript importers (WebVTT, SRT, whisper/whisperX JSON, speaker-labelled text) and writers."""
