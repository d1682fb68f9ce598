"""The labeler: training frames -> labelling batches -> leakage-free datasets."""
