"""Diarisation backends: who spoke when (pyannote, one speaker per channel, or none)."""
