"""The inferer: frame batches -> detections, with a lease on the model and adaptive rate."""
