"""Datasets, model definitions and cached training."""

from __future__ import annotations

from qannealq.data.datasets import DATASETS, Dataset, default_data_dir, load_dataset, load_digits, load_npz
from qannealq.data.models import MLP, accuracy, cache_dir, train_mlp

__all__ = ["DATASETS", "Dataset", "default_data_dir", "load_dataset", "load_digits", "load_npz", "MLP",
           "accuracy", "cache_dir", "train_mlp"]
