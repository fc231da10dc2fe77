"""Experiment tracking and sweeps.

tracker.py   W&B wrapper used by training/run.py (auto|online|offline|disabled; never fatal to training)
sweep.py     sweep-file validation and the local sweep driver: `python -m tracking.sweep sweep.yaml --count N`
best_run.py  best run + checkpoint of a sweep / run / runs folder or W&B sweep: `python -m tracking.best_run SOURCE`

Importing the package imports neither wandb nor torch.
"""
