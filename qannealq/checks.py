"""Checks of option values, one message form for all: ``name=value must be ...``, naming what to give instead.

They sit below the commands' settings (:mod:`qannealq.config`) and the backends (each sampler's
``check_options``, :func:`qannealq.contract.check_options`), so that a command refuses a bad ``--sampler-option``
value before any training, and a sampler called from Python refuses it before any work.
"""

from __future__ import annotations

import inspect
import math
import numbers
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from qannealq.errors import InvalidArgumentError

__all__ = ["as_values", "check_distinct", "check_data_dir", "is_count", "is_number", "check_positive", "check_seed",
           "check_choice", "check_number", "check_flag", "check_range", "check_given", "check_values", "at_least",
           "above", "one_of"]

Rule = Callable[[str, Any], Any]


def as_values(value: Any, single: type | tuple[type, ...] = str) -> tuple:
    """An option that takes a list, as a tuple: one value of the type ``single`` is a list of one (``bits=4``,
    ``methods="rtn"``: not the string's characters), as is a value that is no list (for its own check to name)."""
    if isinstance(value, single):
        return (value,)
    try:
        return tuple(value)
    except TypeError:
        return (value,)


def check_distinct(option: str, values: Sequence[Any], given: Sequence[Any] | None = None) -> None:
    """An error naming ``option`` where ``values`` (a list option's, e.g. ``--bits``) name a value more than once:
    each would run once, and the run would not say so (``--bits 4,4``). ``given``: the values as the user gave
    them, shown in the message, where ``values`` are their resolved forms (``qubo`` as ``qubo:layer-sa``)."""
    twice = list(dict.fromkeys(v for i, v in enumerate(values) if v in values[:i]))
    if twice:
        shown = ",".join(str(v) for v in (values if given is None else given))
        raise InvalidArgumentError(f"{option}={shown} names {', '.join(str(v) for v in twice)} more than once: "
                                   "give each value once")


def check_data_dir(path: Any) -> Path:
    """``--data-dir`` as a ``Path`` to an existing folder (a typo there read as "dataset not found, 9 places
    searched" for every dataset)."""
    folder = Path(path)
    if not folder.is_dir():
        raise InvalidArgumentError(f"--data-dir={str(folder)!r} not found: give an existing folder holding the "
                                   "datasets, or leave it out ($QANNEALQ_DATA, else ./datasets and ../shared/datasets)")
    return folder


def is_count(value: Any, minimum: int = 1) -> bool:
    """Whether ``value`` is an integer ``>= minimum`` (a numpy integer too), not a bool: a count of reads, sweeps
    or threads."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= minimum


def check_positive(option: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum`` (:func:`is_count`), else an error naming ``option``."""
    if not is_count(value, minimum):
        raise InvalidArgumentError(f"{option}={value!r} must be an integer >= {minimum}")
    return int(value)


def check_seed(option: str, value: Any) -> int:
    """``value`` as an int in ``0..2**31-1`` (a seed every generator here takes), else an error naming ``option``."""
    if not is_count(value, 0) or value >= 2 ** 31:
        raise InvalidArgumentError(f"{option}={value!r} must be an integer in 0..2**31-1")
    return int(value)


def check_choice(option: str, value: Any, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else an error listing them."""
    if value not in allowed:
        raise InvalidArgumentError(f"{option}={value!r} is unknown: choose one of {', '.join(allowed)}")
    return value


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (a numpy one too), not a bool."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


def check_number(option: str, value: Any, low: float = 0.0, strict: bool = True, unit: str = "") -> float:
    """``value`` as a finite number above ``low`` (``strict``) or at least ``low``, else an error naming
    ``option`` (``unit``, e.g. "seconds", is said in it)."""
    if not is_number(value) or not (value > low if strict else value >= low):
        what = f"a number{' of ' + unit if unit else ''} {'>' if strict else '>='} {low:g}"
        raise InvalidArgumentError(f"{option}={value!r} must be {what}")
    return float(value)


def check_flag(option: str, value: Any) -> bool:
    """``value`` if it is True or False, else an error naming ``option``."""
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{option}={value!r} must be True or False")
    return value


def check_range(option: str, value: Any) -> tuple[float, float]:
    """A pair of positive finite numbers ``(low, high)``, ``low <= high`` (e.g. an anneal's inverse temperatures,
    hot to cold: ``sa`` annealed a reversed pair backwards without a word, ``layer-sa`` refused it after training)."""
    pair = isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1)
    if not pair or len(value) != 2 or not all(is_number(v) and v > 0 for v in value):
        raise InvalidArgumentError(f"{option}={value!r} must be two positive numbers [low, high], e.g. [0.1, 10]")
    if value[0] > value[1]:
        raise InvalidArgumentError(f"{option}={value!r} must be [low, high] with low <= high, e.g. [0.1, 10]: "
                                   f"give [{value[1]!r}, {value[0]!r}]")
    return float(value[0]), float(value[1])


def at_least(minimum: int) -> Rule:
    """A rule: an integer ``>= minimum``."""
    return lambda option, value: check_positive(option, value, minimum)


def above(low: float, unit: str = "") -> Rule:
    """A rule: a finite number ``> low``."""
    return lambda option, value: check_number(option, value, low, True, unit)


def one_of(*allowed: str) -> Rule:
    """A rule: one of ``allowed``."""
    return lambda option, value: check_choice(option, value, allowed)


def check_given(function: Any, **values: Any) -> None:
    """Refuse a value None where ``function``'s default for that keyword is a value: a constructor's option given
    as None (``get_sampler("tabu", num_reads=None)`` was built, and each call then took dwave-samplers' own
    default, not ours). The defaults are read from ``function``'s signature, so they cannot drift from it."""
    parameters = inspect.signature(function).parameters
    for option, value in values.items():
        default = parameters[option].default
        if value is None and default is not None:
            raise InvalidArgumentError(f"{option}=None: give a value, or leave {option} out for its default "
                                       f"{default!r}")


def check_values(options: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """Apply each rule (a ``check_*`` function above, or one that :func:`at_least`, :func:`above` or
    :func:`one_of` makes: called with the option's name and value) to its option where given and not None (None:
    the sampler's default); options without a rule are left to the sampler.

    Raises:
        InvalidArgumentError: the first option whose value its rule refuses, named with its value.
    """
    for name, value in options.items():
        rule = rules.get(name)
        if rule is not None and value is not None:
            rule(name, value)
