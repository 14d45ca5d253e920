"""Datasets (loaders, sources, downloads), model definitions and cached training."""

from __future__ import annotations

from qannealq.data.datasets import (DATASETS, Dataset, cache_dir, data_fingerprint, dataset_checksum,
                                    default_data_dir, load_dataset, load_digits, load_npz, source_checksum)
from qannealq.data.models import MLP, accuracy, checkpoint_path, partial_path, train_mlp
from qannealq.data.sources import DatasetNotFoundError

__all__ = ["DATASETS", "Dataset", "DatasetNotFoundError", "data_fingerprint", "dataset_checksum", "default_data_dir",
           "load_dataset", "load_digits", "load_npz", "source_checksum", "MLP", "accuracy", "cache_dir",
           "checkpoint_path", "partial_path", "train_mlp"]
