"""Datasets (loaders, sources, downloads), model definitions and cached training."""

from __future__ import annotations

from qannealq._lazy import lazy_exports

#: Imported on first use (:func:`qannealq._lazy.lazy_exports`): ``models`` loads torch, and the command line's
#: parser needs only :data:`qannealq.data.sources.DATASETS`.
__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "datasets": ("DATASETS", "Dataset", "cache_dir", "data_fingerprint", "dataset_checksum", "default_data_dir",
                 "load_dataset", "load_digits", "load_npz", "source_checksum"),
    "models": ("MLP", "accuracy", "checkpoint_path", "partial_path", "train_mlp"),
    "sources": ("DatasetNotFoundError",),
})
