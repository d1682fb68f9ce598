"""The trainer: datasets -> trained, evaluated model versions (Rekognition Custom Labels API)."""
