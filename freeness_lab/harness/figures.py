"""Shared helpers of the paper figures.

For the figure studies of the app (:mod:`freeness_lab.harness.studies`): :class:`Check` (one
PASS/FAIL claim), :func:`spectrum_panel`, :func:`check_cases` (the critical cases a study
draws), and :func:`app_arguments` (the command line of the ``experiments/<fig>/run.py``
aliases).

For the figure still run as a standalone Hydra app (figure 5, ``experiments/fig5_*``;
:func:`figure_app`, :func:`run_figure`), with :func:`freeness_lab.harness.stats.correlation`
re-exported: one folder per run, ``results/<figure>/<run>/`` (:func:`output_dir`), holding the
PNGs, the CSVs behind them (:func:`write_csv`), ``metadata.json`` (config, git state,
package versions; :func:`write_metadata`) and ``summary.md`` with one PASS/FAIL line per
claim (:func:`write_summary`). Files are written atomically (temporary name, then
``os.replace``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from freeness_lab.harness.provenance import git_state, package_versions
from freeness_lab.harness.stats import correlation
from freeness_lab.harness.storage import write_json
from freeness_lab.spec import SpecError
from freeness_lab.theory.predictions import critical_point

__all__ = ["Check", "app_arguments", "check_cases", "check_config_keys", "correlation",
           "figure_app", "output_dir", "run_figure", "spectrum_panel", "write_csv",
           "write_metadata", "write_summary"]


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


def check_config_keys(cfg: Mapping[str, Any], allowed: Iterable[str], where: str = "") -> None:
    """Refuse keys outside ``allowed`` (Hydra accepts ``+misspelled=...`` silently).

    Raises
    ------
    ValueError
        Naming the first unknown key and the allowed ones.
    """
    allowed = tuple(allowed)
    for key in cfg:
        if key not in allowed and key != "hydra":
            raise ValueError(f"{where}{key}: unknown config key; allowed: {', '.join(allowed)}")


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


def output_dir(root: str | Path, figure: str, run: str) -> Path:
    """``root/figure/run``, created."""
    path = Path(root) / figure / run
    path.mkdir(parents=True, exist_ok=True)
    return path


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv(df: pd.DataFrame, path: Path | str) -> Path:
    """Write a table as CSV atomically; returns the path."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def write_metadata(out_dir: Path, config: Mapping[str, Any], **extra: Any) -> Path:
    """``metadata.json``: the resolved config, git commit and dirty flag, package versions."""
    path = Path(out_dir) / "metadata.json"
    write_json(path, {"config": dict(config), "git": git_state(),
                      "versions": package_versions(), **extra})
    return path


def write_summary(out_dir: Path, title: str, checks: Sequence[Check],
                  notes: Sequence[str] = ()) -> Path:
    """Write ``summary.md`` (title, one PASS/FAIL line per check, notes) and print it."""
    lines = [f"# {title}", "", *(f"- {c.line()}" for c in checks)]
    if notes:
        lines += ["", *notes]
    verdict = "ALL CHECKS PASS" if all(c.passed for c in checks) else "SOME CHECKS FAIL"
    lines += ["", f"**{verdict}** ({sum(c.passed for c in checks)}/{len(checks)})", ""]
    text = "\n".join(lines)
    path = Path(out_dir) / "summary.md"
    _atomic_text(path, text)
    print(text)
    return path


#: top-level keys of every figure config (experiments/fig*/config.yaml)
CONFIG_KEYS = ("figure", "title", "size", "seed", "results_root", "run", "sizes")


def run_figure(cfg: Mapping[str, Any],
               compute: Callable[[Mapping[str, Any], int, Path],
                                 tuple[list[Check], list[str]]]) -> int:
    """Validate a figure config, run ``compute(params, seed, out_dir)``, write the summary.

    ``params`` is ``cfg["sizes"][cfg["size"]]``; ``out_dir`` is
    ``results_root/figure/run``. Writes ``metadata.json`` before the work and ``summary.md``
    after it. Returns the exit status: 0 when every check passes, 1 otherwise.

    Raises
    ------
    ValueError
        For an unknown top-level key or an unknown ``size``.
    """
    check_config_keys(cfg, CONFIG_KEYS)
    sizes = cfg["sizes"]
    if cfg["size"] not in sizes:
        raise ValueError(f"size: must be one of {', '.join(sizes)}, got {cfg['size']!r}")
    out = output_dir(cfg["results_root"], cfg["figure"], str(cfg["run"]))
    write_metadata(out, cfg)
    checks, notes = compute(sizes[cfg["size"]], int(cfg["seed"]), out)
    write_summary(out, f"{cfg['title']} (size={cfg['size']})", checks, notes)
    return 0 if all(c.passed for c in checks) else 1


def figure_app(compute: Callable[[Mapping[str, Any], int, Path],
                                  tuple[list[Check], list[str]]],
               script: str | Path) -> Callable[[], None]:
    """The Hydra entry point of a figure script: ``config.yaml`` beside ``script``.

    ``main = figure_app(compute, __file__)`` then ``main()`` composes the config with the
    command-line overrides, runs :func:`run_figure` and exits with its status.
    """
    import hydra
    from omegaconf import DictConfig, OmegaConf

    @hydra.main(config_path=str(Path(script).resolve().parent), config_name="config",
                version_base="1.3")
    def main(cfg: DictConfig) -> None:
        status = run_figure(OmegaConf.to_container(cfg, resolve=True), compute)
        if status:
            raise SystemExit(status)

    return main


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
