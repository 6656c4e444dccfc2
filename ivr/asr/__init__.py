"""Offline speech recognition (PocketSphinx by default, Vosk when a model is installed)."""
