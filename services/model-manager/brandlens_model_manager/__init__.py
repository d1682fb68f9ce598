"""The model-manager: runs a model while someone holds a lease on it, stops it soon after."""
