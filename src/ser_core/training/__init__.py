"""Training and evaluation: labels, dataset layouts, feature extraction with its cache, recording
channels for training copies, metrics, `train`/`evaluate` and profile comparison."""
