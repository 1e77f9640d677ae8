"""Training one architecture: the trainer, datasets, and execution on Ray Tune."""
