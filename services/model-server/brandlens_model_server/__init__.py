"""brandlens model-server: a self-hosted Rekognition Custom Labels endpoint."""
