"""The spectral check: each trial's ESD against the limit and the paired law, and its decay in M.

Per trial (:func:`trial_rows`, called by the spectrum study's trial): the comparisons of
:data:`COMPARISONS` -- (network, matrix, reference) -- each as rows (metric, point, value,
law) of the table ``spectral_distance`` (:mod:`~freeness_lab.harness.spectral_distance`,
:mod:`~freeness_lab.harness.spectral_references`):

============  =====  ===============================================================
metric        point  value / law
============  =====  ===============================================================
kolmogorov    x*     d_K above the floor (attained at x*) / NaN
wasserstein1         W_1 above the floor / NaN
floor         f      ESD fraction below the floor f / F(f)
atom          a      ESD fraction counted at the atom a / its mass
quantile      p      ESD quantile / law quantile (p = 0.1 .. 0.9); not for the cyclic
                     control (against a law it is built not to follow)
top                  largest eigenvalue / top of the law's support; not for the cyclic
                     control
cdf           x      F_n(x) / F(x) at each point compared (the floor, the eigenvalues
                     above it, the atoms) and on a grid (:func:`cdf_curve`): trial 0
                     only, the sampled network against the limit and the paired law
                     (:data:`CURVES`; the cdf plots)
============  =====  ===============================================================

``status``: ``ok``; ``unavailable`` (the theory does not cover it:
:class:`~freeness_lab.theory.TheoryUnavailable`) or ``error`` (the reference could not be
built or solved, or its mass is off by more than MASS_DEFECT_MAX / M -- 10 CONTROL_CDF_TOL
for the cyclic control's law: :func:`check_mass`), with NaN values.

Per (variant, network, matrix, reference, metric) over the widths (:func:`fit_distances`),
in the style of the freeness words (:mod:`freeness_lab.harness.freeness`):

* the root-mean-square distance over the trials at each M, its SE by the delta method
  (se(mean d^2) / (2 rms)), and the weighted least-squares slope of log rms on log M with
  its SE (Birge-inflated, :func:`~freeness_lab.harness.stats.weighted_lstsq`);
* the distance extrapolated to M = infinity by the weighted fit mean d(M) = d_inf +
  b M^(-1/2): the slowest decay a mere convergence of the marginals gives, so that under
  freeness (faster decay) d_inf is at most noise (or negative), and a distance tending to a
  positive constant gives d_inf > 0 by many SEs; ``z_inf`` = d_inf / se;
* the verdict, for the paired, classical and cyclic comparisons: ``free`` when the slope is
  below -1/2 by ``SLOPE_SIGNIFICANCE`` SEs and z_inf < ``Z_WITHIN_NOISE``; ``not free`` when
  z_inf >= ``Z_NOT_FREE``, or when the slope is ABOVE -1/2 by ``SLOPE_SIGNIFICANCE`` SEs (a
  decay slower than the marginals' own) and z_inf >= ``Z_WITHIN_NOISE``; ``inconclusive``
  otherwise. The limit reference gets its slope
  (about -1/2 for smooth phi) and no verdict: it measures the marginals, not freeness.
  Expected (the claims, on the Kolmogorov distance): ``free`` for the paired law of the
  sampled networks, ``not free`` for the classical product and for the cyclic control; a
  check fails when the verdict contradicts it. W_1 verdicts are reported, not claimed.
* a rectangular network's classical and cyclic comparisons (square-only,
  :data:`~freeness_lab.harness.spectral_references.SQUARE_ONLY`) are ``unavailable`` in every
  trial and ``not claimed`` (:data:`NOT_CLAIMED`): no ``expected``, never failing;
* the top eigenvalue's gap to the top of the support, |lambda_max - top|: its fitted rate
  (metric ``top``; expected near M^(-2/3) at a square-root edge), no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from freeness_lab.harness.freeness import SLOPE_SIGNIFICANCE, Z_NOT_FREE, Z_WITHIN_NOISE
from freeness_lab.harness.spectral_distance import (
    QUANTILE_LEVELS,
    Comparison,
    compare,
    noise_floor,
)
from freeness_lab.harness.spectral_references import (
    CONTROL_CDF_TOL,
    SQUARE_ONLY,
    classical_law,
    cyclic_network,
    limit_law,
    paired_law,
)
from freeness_lab.harness.spectrum import trial_index
from freeness_lab.harness.stats import mean_se, weighted_lstsq
from freeness_lab.simulate.network import SampledNetwork
from freeness_lab.theory import TheoryUnavailable

__all__ = ["CDF_POINTS", "COMPARISONS", "CURVES", "EXPECTED", "MASS_DEFECT_MAX", "NOT_CLAIMED",
           "cdf_curve", "check_mass", "curve_rows", "fit_distances", "trial_rows"]

#: (network, matrix, reference) compared in every trial
COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("sampled", "JJT", "limit"), ("sampled", "JJT", "paired"),
    ("sampled", "JJT", "classical"), ("sampled", "H_L", "limit"),
    ("sampled", "H_L", "paired"), ("cyclic", "JJT", "paired"))
#: points of the evenly spaced part of each cdf curve (:func:`cdf_curve`; one every ~3
#: pixels of the 6.5-inch cdf plots at 110 dpi)
CDF_POINTS = 240
#: the comparisons whose cdfs trial 0 of each cell records (metric ``cdf``), for the plots
CURVES = frozenset(k for k in COMPARISONS
                   if k[0] == "sampled" and k[2] in ("limit", "paired"))
#: the verdict a sound harness must reach, per (network, reference)
EXPECTED = {("sampled", "paired"): "free", ("sampled", "classical"): "not free",
            ("cyclic", "paired"): "not free"}
#: the verdict of a square-only comparison (``SQUARE_ONLY``) of a rectangular network
NOT_CLAIMED = "not claimed"
#: distance metrics fitted against M
DISTANCES = ("kolmogorov", "wasserstein1")
#: the metric whose verdicts are the claims (W_1 weighs the heavy upper tail of the Gaussian
#: products, whose fluctuations decay with the top edge: its verdicts are shown, not claimed)
CLAIMED_METRIC = "kolmogorov"
#: per-trial table columns besides the cell's label
COLUMNS = ("network", "matrix", "reference", "metric", "point", "value", "law", "status")


def curve_rows(width: int, trials: int) -> int:
    """The ``cdf`` rows of a cell of ``trials`` trials at the largest layer width ``width``,
    per trial: trial 0's points (at most the width, a few atoms and ``CDF_POINTS``) for
    each of :data:`CURVES`, spread over the trials (a memory estimate)."""
    return len(CURVES) * (width + CDF_POINTS + 4) // max(trials, 1)


def cdf_curve(eigenvalues: np.ndarray, law, comparison: Comparison
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, F_n(x), F(x)), x increasing: the points ``comparison`` compared (the floor, the
    eigenvalues above it, the atoms) and ``CDF_POINTS`` - 2 more, evenly spaced between the
    first and the largest eigenvalue, where the spectrum has gaps the law may not (a
    drawing of the law's cdf; inside the blocks the comparison accepted, they cost next to
    nothing). A point where the law's cdf is not finite is left out."""
    x, esd, F = comparison.cdf
    e = np.sort(eigenvalues)
    grid = np.linspace(x[0], max(x[-1], e[-1]), CDF_POINTS)[1:-1]
    grid = grid[~np.isin(grid, x)]
    Fg = law.cdf(grid)
    ok = np.isfinite(Fg)
    x = np.concatenate([x, grid[ok]])
    order = np.argsort(x, kind="stable")
    return (x[order], np.concatenate([esd, np.searchsorted(e, grid[ok], "right") / e.size]
                                     )[order], np.concatenate([F, Fg[ok]])[order])


def _reference(net: SampledNetwork, cyclic: SampledNetwork | None, seed: np.random.SeedSequence,
               network: str, matrix: str, reference: str, include_bias: bool
               ) -> Callable[[], Any]:
    if reference == "limit":
        return lambda: limit_law(net.spec, matrix)
    if reference == "classical":
        return lambda: classical_law(net, seed)
    if network == "cyclic":
        return lambda: paired_law(cyclic, matrix, include_bias, weights="orthogonal",
                                  tol=CONTROL_CDF_TOL)
    return lambda: paired_law(net, matrix, include_bias)


def trial_rows(net: SampledNetwork, spectra: dict[str, np.ndarray],
               seed: np.random.SeedSequence, include_bias: bool) -> dict[str, list]:
    """The ``spectral_distance`` columns of one trial (module docstring).

    Parameters
    ----------
    net : SampledNetwork
        The trial's network.
    spectra : dict
        Its eigenvalues by matrix ("JJT", "H_L").
    seed : numpy.random.SeedSequence
        The trial's sequence (the classical product draws from a stream of its own).
    include_bias : bool
        Whether H_L includes the bias parameters.

    A rectangular network (widths N_0..N_L): the floor is that of the largest width, and
    the comparisons of ``SQUARE_ONLY`` (the classical product, the cyclic control) are
    ``unavailable`` (:mod:`~freeness_lab.harness.spectral_references`). Trial 0 of a cell
    (:func:`~freeness_lab.harness.spectrum.trial_index`) also records the cdfs of the
    comparisons of :data:`CURVES` (metric ``cdf``, one row per point compared).
    """
    eigs = {("sampled", m): e for m, e in spectra.items()}
    cyclic = cyclic_network(net) if net.spec.is_square else None
    if cyclic is not None:
        eigs[("cyclic", "JJT")] = cyclic.jacobian_spectrum()
    width = max(net.spec.layer_widths)
    cols: dict[str, list] = {c: [] for c in COLUMNS}

    def add(key: tuple[str, str, str], metric: str, point: float, value: float, law: float,
            status: str) -> None:
        for c, v in zip(COLUMNS, (*key, metric, point, value, law, status), strict=True):
            cols[c].append(v)

    def add_curve(key: tuple[str, str, str], x: np.ndarray, esd: np.ndarray,
                  law: np.ndarray) -> None:
        n = len(x)
        for c, v in zip(COLUMNS, ([key[0]] * n, [key[1]] * n, [key[2]] * n, ["cdf"] * n,
                                  x.tolist(), esd.tolist(), law.tolist(), ["ok"] * n),
                        strict=True):
            cols[c].extend(v)

    curves = trial_index(seed) == 0

    for key in COMPARISONS:
        network, matrix, reference = key
        e = eigs.get((network, matrix))
        try:
            if e is None:  # the cyclic control of a rectangular network: raises
                cyclic_network(net)  # TheoryUnavailable, saying why
            floor = noise_floor(e, width, net.spec.depth)
            law = _reference(net, cyclic, seed, network, matrix, reference, include_bias)()
            check_mass(law, 10 * CONTROL_CDF_TOL if network == "cyclic"
                       else MASS_DEFECT_MAX / net.spec.width)
            # the cyclic control's quantiles and top, against a law it is built not to
            # follow, would say nothing (its claim is its distance): not computed
            control = network == "cyclic"
            c = compare(e, law, floor, levels=() if control else QUANTILE_LEVELS,
                        top=not control)
        except TheoryUnavailable:
            status = "unavailable"
        except Exception:  # noqa: BLE001 -- any other failure of the theory side is an error
            status = "error"
        else:
            add(key, "kolmogorov", c.kolmogorov_at, c.kolmogorov, math.nan, "ok")
            add(key, "wasserstein1", math.nan, c.wasserstein1, math.nan, "ok")
            add(key, "floor", c.floor, *c.below_floor, "ok")
            for loc, frac, mass in c.atoms:
                add(key, "atom", loc, frac, mass, "ok")
            for p, esd_q, law_q in c.quantiles:
                add(key, "quantile", p, esd_q, law_q, "ok")
            if not control:
                add(key, "top", math.nan, *c.top, "ok")
            if curves and key in CURVES:
                try:
                    curve = cdf_curve(e, law, c)
                except Exception:  # noqa: BLE001 -- the drawing's grid failed: the points
                    curve = c.cdf  # compared are the curve (the comparison stands)
                add_curve(key, *curve)
            continue
        for metric in DISTANCES:
            add(key, metric, math.nan, math.nan, math.nan, status)
    return cols


#: a reference law whose total mass (its quadrature's continuous mass plus its atoms) is off
#: by more than this over M is an error, not a distance: the cdf carries that offset, and a
#: Kolmogorov distance of O(1/M) is what the check measures
MASS_DEFECT_MAX = 0.01


def check_mass(law, bound: float) -> None:
    """Raise ValueError when ``law``'s mass (its continuous part -- by the support quadrature
    of a solved law, by the contour integrals of a pointwise one -- plus the atoms) differs
    from 1 by more than ``bound`` (MASS_DEFECT_MAX / M for the references of a sampled
    network; an empirical law has its mass exactly)."""
    mass = getattr(law, "continuous_mass", None)
    if mass is None:
        return
    defect = mass() + law.atom_mass - 1.0
    if not abs(defect) <= bound:
        raise ValueError(f"{law!r}: mass off by {defect:.2e} (at most {bound:.1e})")


#: an SE below this fraction of the largest mean counts as this: a distance identical in
#: every trial (e.g. an atom's mass, exactly) is a deterministic value, not a failed fit
SE_FLOOR = 1e-9


def _slope(m: np.ndarray, rms: np.ndarray, rms_se: np.ndarray) -> tuple[float, float]:
    """Weighted slope of log rms on log M and its SE; NaN when a distance is 0."""
    if len(m) < 2 or not np.all(rms > 0):
        return math.nan, math.nan
    rel = np.maximum(rms_se / rms, SE_FLOOR)
    try:
        beta, err, _ = weighted_lstsq(np.column_stack([np.ones_like(m), np.log(m)]),
                                      np.log(rms), var=rel**2)
    except np.linalg.LinAlgError:  # weights spanning 30 decades: no usable fit
        return math.nan, math.nan
    return float(beta[1]), float(err[1])


def _extrapolate(m: np.ndarray, mean: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """d_inf and its SE from mean d(M) = d_inf + b M^-1/2 (weights 1 / se^2)."""
    if len(m) < 2 or not np.all(np.isfinite(se)):
        return math.nan, math.nan
    se = np.maximum(se, SE_FLOOR * max(float(np.max(np.abs(mean))), 1e-12))
    try:
        beta, err, _ = weighted_lstsq(np.column_stack([np.ones_like(m), m**-0.5]), mean,
                                      var=se**2)
    except np.linalg.LinAlgError:
        return math.nan, math.nan
    return float(beta[0]), float(err[0])


def verdict(slope: float, slope_se: float, z_inf: float) -> str:
    """``free``, ``not free`` or ``inconclusive`` (module docstring)."""
    if z_inf < Z_WITHIN_NOISE and (slope + 0.5) < -SLOPE_SIGNIFICANCE * slope_se:
        return "free"
    slower = (slope + 0.5) > SLOPE_SIGNIFICANCE * slope_se
    if z_inf >= Z_NOT_FREE or (slower and z_inf >= Z_WITHIN_NOISE):
        return "not free"
    return "inconclusive"


def per_width(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per (keys, width) of the distance rows: trials, mean, se, rms and its SE, and the
    number of rows that are not ``ok``."""
    rows = []
    for key, cell in table.groupby([*keys, "width"], sort=False):
        ok = cell[cell["status"] == "ok"]["value"].to_numpy(float)
        bad = int((cell["status"] != "ok").sum() + (~np.isfinite(ok)).sum())
        ok = ok[np.isfinite(ok)]
        mean, se = (map(float, mean_se(ok)) if ok.size > 1 else (math.nan, math.nan))
        ms, ms_se = (map(float, mean_se(ok**2)) if ok.size > 1 else (math.nan, math.nan))
        rms = math.sqrt(ms) if ms == ms else math.nan
        rows.append({**dict(zip([*keys, "width"], key, strict=True)), "trials": ok.size,
                     "not_ok": bad, "mean": mean, "se": se, "rms": rms,
                     "rms_se": 0.5 * ms_se / rms if rms > 0 else math.nan})
    return pd.DataFrame(rows)


def _rectangular(rows: pd.DataFrame) -> bool:
    """Whether ``rows`` (of one comparison) come from rectangular networks: their ``widths``
    column ("64-128-64", present in the tables of rectangular cells) names unequal widths."""
    if "widths" not in rows.columns:
        return False
    return any(len(set(str(w).split("-"))) > 1 for w in rows["widths"].unique())


def fit_distances(table: pd.DataFrame, variant_columns: list[str]) -> pd.DataFrame:
    """Slope, extrapolated distance and verdict per (variant, network, matrix, reference,
    metric) (module docstring), from the per-trial ``spectral_distance`` table.

    Returns
    -------
    pandas.DataFrame
        Columns: the variant's, ``network, matrix, reference, metric, widths, slope,
        slope_se, d_inf, se_inf, z_inf, rms_last, se_last, not_ok, expected, verdict``
        (``expected`` and ``verdict`` empty for the limit reference and the top edge; a
        comparison with rows that are not ``ok`` gets the verdict ``theory error`` or
        ``no theory``; a comparison of ``SQUARE_ONLY`` of rectangular networks, whose rows
        are ``unavailable``, is not claimed: ``expected`` empty, verdict ``not claimed``).
        Rectangular tables are fitted per shape when ``variant_columns`` include
        ``width_ratios``.
    """
    keys = [*variant_columns, "network", "matrix", "reference", "metric"]
    dist = table[table["metric"].isin(DISTANCES)]
    top = table[(table["metric"] == "top") & (table["status"] == "ok")].copy()
    top["value"] = np.abs(top["value"] - top["law"])
    stats = pd.concat([per_width(dist, keys), per_width(top, keys)], ignore_index=True)
    # each comparison's rows, by key (one pass over the table, not one scan per fit)
    comparisons = dict(iter(table.groupby(keys, sort=False, dropna=False)))
    rows = []
    for key, g in stats.groupby(keys, sort=False):
        g = g.sort_values("width")
        good = g[np.isfinite(g["rms"])]
        m = good["width"].to_numpy(float)
        slope, slope_se = _slope(m, good["rms"].to_numpy(), good["rms_se"].to_numpy())
        d_inf, se_inf = _extrapolate(m, good["mean"].to_numpy(), good["se"].to_numpy())
        z_inf = d_inf / se_inf if se_inf > 0 else math.nan
        label = dict(zip(keys, key, strict=True))
        expected = EXPECTED.get((label["network"], label["reference"]), "")
        comparison = comparisons[key]
        statuses = set(comparison["status"])
        if (label["network"], label["reference"]) in SQUARE_ONLY and _rectangular(comparison):
            expected, word = "", "" if label["metric"] == "top" else NOT_CLAIMED
        elif not expected or label["metric"] == "top":
            word = ""
        elif "error" in statuses:
            word = "theory error"
        elif "unavailable" in statuses:
            word = "no theory"
        else:
            word = verdict(slope, slope_se, z_inf)
        last = g.iloc[-1]
        claimed = label["metric"] == CLAIMED_METRIC
        rows.append({**label, "widths": len(g), "slope": slope, "slope_se": slope_se,
                     "d_inf": d_inf, "se_inf": se_inf, "z_inf": z_inf,
                     "rms_last": float(last["rms"]), "se_last": float(last["rms_se"]),
                     "not_ok": int(g["not_ok"].sum()),
                     "expected": expected if claimed else "", "verdict": word})
    return pd.DataFrame(rows)
