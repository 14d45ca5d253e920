"""Typed, frozen settings of the commands; each validates itself on construction, before any work.

The CLI parses its arguments into these objects and calls the library with them; library code never sees an
``argparse.Namespace``. A bad value raises :class:`~qannealq.errors.InvalidArgumentError` naming the option
(as the CLI spells it) and what to do.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from qannealq.baselines import DEFAULT_WARM_START
from qannealq.calibration import CALIBRATION_MODES
from qannealq.checks import as_values, check_choice, check_data_dir, check_distinct, check_positive, check_seed
from qannealq.errors import InvalidArgumentError
from qannealq.grid import GRANULARITY_CHOICES, INT1_SCHEMES, check_bits
from qannealq.solve import METHODS, parse_warm_start
from qannealq.weighted import OBJECTIVES, check_flags, make_objective, resumed_weight

__all__ = ["ModelConfig", "QuantizeConfig", "RunConfig", "check_choice", "check_positive", "parse_warm_start",
           "check_qpu_budget", "DEFAULT_RETRIES"]

#: Retries of a cloud backend's transient failures where ``--retries`` is not given.
DEFAULT_RETRIES = 3


def check_qpu_budget(value: Any) -> float:
    """``--qpu-budget`` as a positive, finite number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise InvalidArgumentError(f"--qpu-budget={value!r} must be a positive number of seconds of QPU access "
                                   "time, e.g. 0.5")
    return float(value)


def _recipe_value(stored: Mapping[str, Any], name: str) -> Any:
    """The recipe's ``hidden`` or ``epochs`` of the stored model's dataset (None for a dataset unknown here)."""
    from qannealq.data.recipes import recipe

    try:
        return getattr(recipe(stored.get("dataset", "digits"), stored.get("input_size")), name)
    except KeyError:
        return None


@dataclass(frozen=True)
class ModelConfig:
    """Which network to quantize: a dataset, its trained MLP and the calibration draw.

    Attributes:
        dataset: a name of :data:`qannealq.data.DATASETS`.
        input_size: digits only: pool the 8x8 images to ``input_size``² (4 gives the tiny 16-16-10 model).
        data_dir: folder holding the datasets (None: ``$QANNEALQ_DATA``, else the default folders).
        hidden: hidden layer sizes, one int for one layer (None: the dataset's recipe, see
            :data:`qannealq.experiment.RECIPES`).
        epochs: training epochs (None: the recipe's).
        seed: seed of the initialisation, the training order and the calibration draw.
        num_calibration: calibration samples drawn from the training set.
    """

    dataset: str = "digits"
    input_size: int | None = None
    data_dir: Path | None = None
    hidden: tuple[int, ...] | None = None
    epochs: int | None = None
    seed: int = 0
    num_calibration: int = 1024

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], **given: Any) -> "ModelConfig":
        """The config stored by a results store (a plain dict), with the fields ``given`` in its place.

        A ``hidden`` or ``epochs`` given equal to the recipe's value, where the stored run left it to the recipe
        (None), is the stored value: ``--resume DIR --hidden 16`` of a run of the 16-16-10 model was refused."""
        given = {**given}
        for name in ("hidden", "epochs"):
            if stored.get(name) is None and given.get(name) is not None and _recipe_value(stored, name) == (
                    tuple(as_values(given[name], numbers.Integral)) if name == "hidden" else given[name]):
                del given[name]
        fields_ = {**stored, **given}
        if fields_.get("hidden") is not None:
            fields_["hidden"] = tuple(fields_["hidden"])
        folder = fields_.get("data_dir")
        if fields_.get("dataset") == "digits" and stored.get("data_dir") is None and given.get("data_dir") is not None:
            # the store's refusal spoke of the files' SHA-256 and of links, which digits has none of
            raise InvalidArgumentError(f"--resume: --data-dir={str(given['data_dir'])!r} does not apply: dataset "
                                       "'digits' is embedded in scikit-learn and reads no data folder, and the stored "
                                       "run was given none; resume without --data-dir")
        if "data_dir" not in given and folder is not None and not Path(folder).is_dir():
            where = " (a relative path: it is read from the folder the resume runs in)" if not Path(
                folder).is_absolute() else ""
            raise InvalidArgumentError(f"--resume: the stored run read its datasets from --data-dir={str(folder)!r}, "
                                       f"which is not found{where}; give --data-dir with the datasets' new folder "
                                       "(the resume checks that its files are the stored run's, by their SHA-256), "
                                       "or make that path lead to them again (a link to their new place works)")
        return cls(**fields_)

    def __post_init__(self) -> None:
        from qannealq.data import DATASETS

        check_choice("--dataset", self.dataset, DATASETS)
        if self.input_size is not None:
            if self.dataset != "digits":
                raise InvalidArgumentError(f"--input-size applies to --dataset digits only, not {self.dataset!r}")
            if self.input_size not in (1, 2, 4, 8):
                raise InvalidArgumentError(f"--input-size={self.input_size!r} must divide 8: use 8, 4, 2 or 1")
        if self.hidden is not None:
            object.__setattr__(self, "hidden", as_values(self.hidden, (numbers.Integral, str)))  # 128: (128,)
            if not self.hidden:
                raise InvalidArgumentError("--hidden is empty: give sizes such as 128 or 256,128")
            for size in self.hidden:
                check_positive("--hidden", size)
        if self.epochs is not None:
            check_positive("--epochs", self.epochs)
        object.__setattr__(self, "seed", check_seed("--seed", self.seed))
        check_positive("--num-calibration", self.num_calibration)
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", check_data_dir(self.data_dir))


@dataclass(frozen=True)
class QuantizeConfig:
    """How to quantize: bit widths, methods, the QUBO backend and the grid and calibration options.

    Attributes:
        bits: bit widths, each 1..8.
        methods: from :data:`qannealq.solve.METHODS`.
        backend: the sampler for ``qubo`` (a registry name).
        sampler_options: passed to the sampler (checked against its ``parameters`` by the commands).
        calibration: ``float`` or ``sequential``.
        granularity: ``tensor``, ``channel`` or ``best`` (both solved per row, the lower summed layer error kept).
        int1: ``sign`` or ``paper``.
        warm_start: ``gptq-restricted-pivot`` (the default: GPTQ-restricted with the inputs in pivot order,
            :mod:`qannealq.baselines`; per neuron under the relu-aware objective), ``gptq-restricted-act`` (act
            order), ``gptq-restricted``, ``gptq-pivot``, ``gptq-act``, ``gptq``, ``rtn`` or None.
        objective: ``preact`` (the paper's) or ``relu-aware`` (:mod:`qannealq.weighted`).
        inactive_weight: ``relu-aware``: weight of the samples where the float neuron is off (None: the
            default, :data:`qannealq.weighted.DEFAULT_INACTIVE_WEIGHT`, recorded as its value).
        retries: retries of a cloud backend's transient failures (:mod:`qannealq.backends.retry`; None: the
            default, :data:`DEFAULT_RETRIES`); not a setting of the results (a resumed run may change it). A value
            given where the backend calls no cloud service gets a note (the default gets none).
        memory_limit: ``relu-aware``: bytes a layer's samples and per-neuron matrices may hold (None: the
            default, :data:`qannealq.weighted.DEFAULT_MEMORY_LIMIT`); not a setting of the results either.
    """

    bits: tuple[int, ...] = (8, 4, 3, 2, 1)
    methods: tuple[str, ...] = ("rtn", "gptq", "qubo")
    backend: str = "layer-sa"
    sampler_options: Mapping[str, Any] = field(default_factory=dict)
    calibration: str = "float"
    granularity: str = "tensor"
    int1: str = "sign"
    warm_start: str | None = DEFAULT_WARM_START
    retries: int | None = None
    objective: str = "preact"
    inactive_weight: float | None = None
    memory_limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", as_values(self.bits, (numbers.Integral, str)))  # bits=4: (4,)
        object.__setattr__(self, "methods", as_values(self.methods))  # methods="rtn": ("rtn",)
        object.__setattr__(self, "sampler_options", dict(self.sampler_options))
        if not self.bits:
            raise InvalidArgumentError("--bits is empty: give a comma list such as 8,4,2")
        for bits in self.bits:
            check_bits(bits)
        check_distinct("--bits", self.bits)
        if not self.methods:
            raise InvalidArgumentError("--methods is empty: give a comma list such as rtn,gptq,qubo")
        for method in self.methods:
            check_choice("--methods", method, METHODS)
        check_distinct("--methods", self.methods)
        check_choice("--calibration", self.calibration, CALIBRATION_MODES)
        check_choice("--granularity", self.granularity, GRANULARITY_CHOICES)
        check_choice("--int1", self.int1, INT1_SCHEMES)
        object.__setattr__(self, "warm_start", parse_warm_start(self.warm_start))
        if not isinstance(self.backend, str) or not self.backend:
            raise InvalidArgumentError(f"--backend={self.backend!r} must be a backend name (see qannealq backends)")
        if self.retries is not None:
            check_positive("--retries", self.retries, minimum=0)
        check_choice("--objective", self.objective, OBJECTIVES)
        check_flags(self.objective, self.inactive_weight, self.memory_limit)
        goal = make_objective(self.objective, self.inactive_weight, self.memory_limit)
        object.__setattr__(self, "inactive_weight", goal.inactive_weight if goal.weighted else None)

    @property
    def retry_count(self) -> int:
        """The retries a cloud backend gets: ``retries``, or :data:`DEFAULT_RETRIES` where it was not given."""
        return DEFAULT_RETRIES if self.retries is None else self.retries


@dataclass(frozen=True)
class RunConfig:
    """``qannealq run``: one model, every (bits, method) pair, results into ``out``.

    Attributes:
        model, quantize: what to quantize and how.
        out: the results folder (None: a new folder under ``runs/``).
        resume: continue the run stored in ``out`` (same settings), skipping its finished rows.
        executor: where per-neuron solves run: ``serial`` (None), ``threads:N``, ``processes:N`` or
            ``dask://HOST:PORT`` (:mod:`qannealq.executors`); not a setting of the results (they are equal).
        save_model: write every quantized model into ``out/models/`` (:meth:`ModelResult.save`).
        dry_run: print the QPU plan (calls, neurons per call, reads, estimated QPU access time) and stop
            before any solve; nothing is written.
        qpu_budget: seconds of estimated QPU access time the run may use; a larger plan is refused before the
            first QPU call (QPU backends only).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    out: Path | None = None
    resume: bool = False
    executor: str | None = None
    save_model: bool = False
    dry_run: bool = False
    qpu_budget: float | None = None

    def __post_init__(self) -> None:
        from qannealq.executors import parse_executor

        parse_executor(self.executor)
        if self.qpu_budget is not None:
            object.__setattr__(self, "qpu_budget", check_qpu_budget(self.qpu_budget))
        if self.resume and self.out is None:
            raise InvalidArgumentError("resume=True needs the folder of the run to continue (--resume DIR)")

    @classmethod
    def from_stored(cls, settings: Mapping[str, Any], out: Path, model: Mapping[str, Any] | None = None,
                    quantize: Mapping[str, Any] | None = None, **options: Any) -> "RunConfig":
        """The config of the run stored in ``out`` (its :meth:`stored_settings`), resumed, with the ``model``
        and ``quantize`` fields given (e.g. on the command line) in place of the stored ones and the other
        ``options`` (executor, retries via ``quantize``...). A given field that differs from the stored one
        makes the resume fail with the list of differences (see :meth:`ResultStore.open`). A run that saved its
        models (``out/models/``, made when it started) goes on saving them, as if ``save_model`` were given."""
        from qannealq.contract import unredact

        if (Path(out) / "models").is_dir():
            options["save_model"] = True

        given = dict(quantize or {})
        stored = dict(settings.get("quantize", {}))
        stored["sampler_options"] = unredact(stored.get("sampler_options", {}), given.pop("sampler_options", {}),
                                             f"--resume {out}")
        resumed_weight(stored, given)
        return cls(ModelConfig.from_stored(settings.get("model", {}), **(model or {})),
                   QuantizeConfig(**{**stored, **given}), Path(out), resume=True, **options)

    def stored_settings(self) -> dict:
        """What must match to resume: every model and quantization option (secrets redacted)."""
        from dataclasses import asdict

        from qannealq.contract import redact

        quantize = asdict(self.quantize)
        quantize["sampler_options"] = redact(self.quantize.sampler_options)
        quantize.pop("retries"), quantize.pop("memory_limit")  # how hard to try and what to keep, not what is computed
        return {"model": asdict(self.model), "quantize": quantize}
