"""Models: classifiers over backend vectors, the artifact format (no pickle, fail closed),
calibration and per-source normalisation."""
