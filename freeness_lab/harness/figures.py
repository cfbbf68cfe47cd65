"""Shared helpers of the paper figures, all of them studies of the app
(:mod:`freeness_lab.harness.studies`): :class:`Check` (one PASS/FAIL claim),
:func:`spectrum_panel`, :func:`check_keys` and :func:`check_cases` (a study's parameters and
the critical cases it draws), :func:`check_int_list` and :func:`check_ensembles` (parameter
values that several studies take), and :func:`app_arguments` (the command line of the
``experiments/<fig>/run.py`` aliases).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from freeness_lab.spec import SpecError
from freeness_lab.theory.predictions import critical_point

__all__ = ["Check", "app_arguments", "check_cases", "check_ensembles", "check_int_list",
           "check_keys", "spectrum_panel"]


@dataclass(frozen=True)
class Check:
    """One numeric check of a figure's claim.

    Attributes
    ----------
    name : str
        The claim, in a few words.
    passed : bool
        Whether the numbers support it at the stated tolerance.
    detail : str
        The numbers and the tolerance.
    """

    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        """``PASS: name -- detail`` (or ``FAIL``)."""
        return f"{'PASS' if self.passed else 'FAIL'}: {self.name} -- {self.detail}"


def check_keys(params: Mapping[str, Any], allowed: Iterable[str], field: str) -> None:
    """Refuse a key of ``params`` (a study's parameter mapping) outside ``allowed``.

    Raises
    ------
    SpecError
        Naming ``<field>.<key>`` and the allowed keys.
    """
    allowed = tuple(allowed)
    for key in params:
        if key not in allowed:
            raise SpecError(f"{field}.{key}", f"unknown key; allowed: {', '.join(allowed)}")


def check_cases(cases: Iterable[Any], field: str) -> None:
    """Refuse critical cases other than mappings {activation, q_star} with a critical point
    (:func:`~freeness_lab.theory.predictions.critical_point`).

    Raises
    ------
    SpecError
        Naming ``<field>[i]`` of the first bad case.
    """
    for i, case in enumerate(cases):
        if not isinstance(case, dict) or set(case) != {"activation", "q_star"}:
            raise SpecError(f"{field}[{i}]", f"must be a mapping with keys activation, q_star, "
                            f"got {case!r}")
        try:
            critical_point(case["activation"], float(case["q_star"]))
        except (ValueError, ArithmeticError, TypeError) as err:
            raise SpecError(f"{field}[{i}]", f"no critical point: {err}") from None


def check_int_list(value: Any, field: str, low: int = 1) -> list[int]:
    """``value`` as a list if it is a non-empty list of integers >= ``low``, else a
    :class:`SpecError` naming ``field`` (a study checks an integer key as the list of itself)."""
    if (not isinstance(value, list | tuple) or not value
            or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in value)):
        raise SpecError(field, f"must be a non-empty list of integers >= {low}, got {value!r}")
    return list(value)


def check_ensembles(value: Any, field: str) -> None:
    """Refuse, with a :class:`SpecError` naming ``field``, anything but a non-empty list of
    distinct weight ensembles among orthogonal, gaussian."""
    if (not isinstance(value, list | tuple) or not value or len(set(value)) != len(value)
            or not set(value) <= {"orthogonal", "gaussian"}):
        raise SpecError(field, f"must be a non-empty list of distinct ensembles among "
                        f"orthogonal, gaussian, got {value!r}")


def app_arguments(preset: str, argv: Sequence[str]) -> list[str]:
    """The app's command line of a figure alias (``experiments/<fig>/run.py``).

    ``size=small`` selects the CI-size preset ``<preset>_small``, ``size=full`` (the default)
    the preset itself; every other argument is passed on: ``experiment=<preset>[_small]
    [argv...]``.

    Raises
    ------
    ValueError
        For a ``size`` other than ``small`` or ``full``.
    """
    sizes = {"small": f"{preset}_small", "full": preset}
    out, chosen = [], preset
    for arg in argv:
        key, eq, value = arg.partition("=")
        if key == "size" and eq:
            if value not in sizes:
                raise ValueError(f"size: must be one of {', '.join(sizes)}, got {value!r}")
            chosen = sizes[value]
        else:
            out.append(arg)
    return [f"experiment={chosen}", *out]


def spectrum_panel(ax: Any, eigs: np.ndarray, *, x: np.ndarray | None = None,
                   density: np.ndarray | None = None, atoms: np.ndarray | None = None,
                   window: tuple[float, float] | None = None, bins: int = 60,
                   title: str = "") -> None:
    """Histogram of pooled eigenvalues (normalized by the TOTAL count, so that it sits on the
    density of the continuous part) with the theory density and the atoms (vertical lines
    labelled with their mass)."""
    eigs = np.asarray(eigs, float)
    lo, hi = window if window is not None else (float(eigs.min()),
                                                float(np.quantile(eigs, 0.99)))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    counts, _ = np.histogram(eigs, bins=edges)
    heights = counts / (eigs.size * np.diff(edges))
    ax.stairs(heights, edges, fill=True, alpha=0.45, label="Monte Carlo")
    top = float(np.quantile(heights, 0.97)) if heights.size else 1.0
    if top <= 0 and heights.size:   # the sample sits in a few bins (e.g. an atom)
        top = float(heights.max())
    # a continuous part of negligible mass (the law is atoms) is not drawn
    if x is not None and density is not None and np.nanmax(density, initial=0.0) > 1e-8:
        ax.plot(x, density, color="C3", lw=1.3, label="theory")
        finite = density[np.isfinite(density)]
        top = max(top, float(np.quantile(finite, 0.97)) if finite.size else 0.0)
    for loc, mass in (atoms if atoms is not None else np.empty((0, 2))):
        if lo <= loc <= hi:
            ax.axvline(loc, color="k", ls=":", lw=1)
            ax.text(loc, 0.9 * top * 1.3, f" atom {mass:.2f}", fontsize=6)
    ax.set_ylim(0, 1.3 * top if top > 0 else 1.0)
    ax.set_title(title, fontsize=7)
    ax.tick_params(labelsize=6)
