"""How ``compare``'s calls are paced and said: which backends' calls cost (no untimed warm-up for them), the
warm-up's part of a decomposed instance, how long a backend's calls may take (said before they run) and its
time left (on the progress bar)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import dimod
import numpy as np

from qannealq.report import Reporter, duration

if TYPE_CHECKING:
    from qannealq._compare_instances import NeuronInstance

__all__ = ["PAID", "PAID_CLASSES", "paid", "part", "outlook", "time_left", "duration", "LONG_STUDY"]


#: Backends whose calls cost QPU time or cloud credit: no untimed warm-up call (``qannealq.compare``'s warm-up call).
PAID = ("dwave", "dwave-hybrid")
#: dwave-system's samplers whose calls reach a QPU or Leap, met directly or as a composite's child.
PAID_CLASSES = ("DWaveSampler", "DWaveCliqueSampler", "LeapHybridSampler", "LeapHybridBQMSampler")


def paid(name: str, sampler: dimod.Sampler) -> bool:
    """Whether a call of ``sampler`` (registered as ``name``) costs QPU time or credit: a :data:`PAID` name, or
    the sampler or a child of it (a composite's ``child``, down the chain) saying ``paid_calls`` (ours: ``dwave``,
    ``dwave-hybrid``) or being one of dwave-system's :data:`PAID_CLASSES`; the mocks are not."""
    from qannealq.backends import canonical_name, composed

    if canonical_name(name) in PAID:
        return True
    return any(getattr(s, "paid_calls", False) or type(s).__name__ in PAID_CLASSES for s in composed(sampler))


def part(instance: NeuronInstance, size: int) -> NeuronInstance:
    """``instance`` on its ``size`` most strongly coupled variables alone (the largest ``Σ_l |J_jl|``; the others
    dropped), for a warm-up call whose time stands for a decomposed call's sub-problems, which gather strongly
    coupled variables too. Its first ``size`` variables had stood in (MNIST: the image's top rows, mostly dead
    or faint pixels): ``gurobi`` solved them in 0.01 s, where the decomposition's sub-problems took up to its
    10 s each."""
    bqm = instance.bqm
    labels = list(bqm.variables)
    _, (rows, cols, values), _ = bqm.to_numpy_vectors(variable_order=labels)
    strength = np.zeros(len(labels))
    np.add.at(strength, rows, np.abs(values))
    np.add.at(strength, cols, np.abs(values))
    keep = [labels[i] for i in sorted(np.argsort(-strength, kind="stable")[:size])]
    kept = set(keep)
    sub = bqm.copy()
    sub.remove_variables_from([v for v in labels if v not in kept])
    warm = {v: instance.warm_start[v] for v in keep} if instance.warm_start is not None else None
    return replace(instance, name=f"{instance.name}-part", bqm=sub, warm_start=warm, reference=None)


#: A backend's calls expected to take longer than this (seconds, from its warm-up) are said before they run.
LONG_STUDY = 600.0


def outlook(name: str, sampler: dimod.Sampler, todo: Sequence[NeuronInstance], warm: tuple[float, int | None],
            options: Mapping[str, Any], reporter: Reporter) -> None:
    """Say, from its warm-up's ``(seconds, sub-problem size)``, how long backend ``name``'s calls on ``todo`` may
    take, where that may pass :data:`LONG_STUDY`: a decomposed call solves as many sub-problems of the warm-up's
    size as its ``sub_calls`` says (from ``patience`` rounds without a gain to ``max_calls``; ``options``, the
    backend's sampler options, may set them); another call about the warm-up's time (on the smallest instance, so
    a lower bound). ``qannealq compare --dataset mnist`` with its default backends had run for hours with nothing
    said before the slow backend's first call (``gurobi``: 100-200 s a call)."""
    seconds, size = warm
    bounds = getattr(sampler, "sub_calls", None) if size is not None else None
    if bounds is None:
        low = high = seconds * len(todo)
        how = f"{seconds:.1f} s a call on the smallest neuron"
    else:
        given = {key: options[key] for key in ("capacity", "patience", "max_calls") if options.get(key)}
        calls = [bounds(instance.num_variables, **given) for instance in todo]  # the fewest and most each
        low, high = seconds * sum(c[0] for c in calls), seconds * sum(c[1] for c in calls)
        how = (f"one sub-problem of {size} variables took {seconds:.1f} s, and each call solves "
               f"{min(c[0] for c in calls)} (patience) to {max(c[1] for c in calls)} (--max-calls) of them")
    if high < LONG_STUDY:
        return
    span = duration(low) if high <= 1.5 * low else f"{duration(low)} to {duration(high)}"
    shorter = "fewer --neurons or --repeats" + (", a lower --max-calls," if bounds is not None else "")
    reporter.message(f"{name}: its {len(todo)} call(s) may take {span} ({how}); {shorter} or --backends without "
                     f"{name} shorten the study")


def time_left(walls: Sequence[float], calls: int) -> str:
    """The progress bar's estimate of a backend's time left from its own calls so far (the bar's own rate mixes
    backends whose calls differ a thousandfold: ``gurobi`` decomposed on a 599-variable neuron, 200 s a call,
    after ``exact``'s 1 s ones), shown once a call takes a second or more."""
    if not walls or calls <= 0:
        return ""
    each = sum(walls) / len(walls)
    if each < 1.0:
        return ""
    left = each * calls
    return f" ({each:.0f} s a call; this backend about {duration(left)} more)"
