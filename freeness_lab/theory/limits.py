"""Limit spectral laws (width M -> infinity) of a random MLP from its :class:`NetworkSpec`.

Input-output Jacobian J = D_L W_L ... D_1 W_1 (Pennington, Schoenholz, Ganguli 2017, 2018):
the law of J J^T is the free multiplicative convolution

    S_{J J^T}(m) = prod_l S_{D_l^2}(m) S_{W_l W_l^T}(m),

with D_l^2 ~ phi'(h)^2, h ~ N(0, q^l) (non-stationary q^l from q0, or q* at the fixed point),
S_{W W^T} = 1 / sigma_w^2 (orthogonal) or 1 / (sigma_w^2 (1 + m)) (Gaussian, Marchenko-Pastur).

Rectangular widths N_0..N_L: with A_l = J_l J_l^T (N_l x N_l), A_l = D_l W_l A_{l-1} W_l^T D_l.
The nonzero spectrum of W A W^T is that of A W^T W in dimension N_{l-1}; moving a law from
dimension N_{l-1} to N_l multiplies psi by r = N_{l-1} / N_l, i.e. S(m) -> S(m/r)(1+m)/(r+m).
With kappa_l = N_L / N_l this gives

    S_{A_L}(m) = prod_l S_{D_l^2}(kappa_l m) T_l(m),
    T_l = 1 / (sigma_w^2 (1 + kappa_{l-1} m))                         Gaussian,
    T_l = (1 + kappa_l m) / (sigma_w^2 (1 + kappa_{l-1} m)) if N_l >= N_{l-1},
          1 / sigma_w^2 otherwise                                      orthogonal,

(the orthogonal rectangular W of the spec is sigma_w sqrt(max(1, N_l/N_{l-1})) times a block of
a Haar matrix). Atoms follow Belinschi's rule layer by layer, with the same change of
dimension (zero mass 1 - r (1 - p_0), other masses times r). The construction, from any laws
of D_l^2, is :func:`~freeness_lab.theory.jacobian_product.jacobian_product_law`.

FIM dual H_L (Hayase, Karakida 2021), square widths: H_1 = q0 I and
H_{l+1} = qhat_l I + W_{l+1} D_l H_l D_l W_{l+1}^T, so

    mu_1 = delta_{q0},   mu_{l+1} = qhat_l + (nu_l boxtimes w boxtimes mu_l),

w = delta_{sigma_w^2} (orthogonal) or Marchenko-Pastur(1, sigma_w^2) (Gaussian), qhat_l =
E phi(h^l)^2 (qhat_0 = q0). The mean and variance obey (free product: tr(ab) = tr a tr b and
Var/mean^2 adds up)

    m_1(l+1) = qhat_l + chi_l m_1(l),
    V(l+1)   = chi_l^2 V(l) + chi_l^2 m_1(l)^2 (mu_2/mu_1^2 - 1 + s),

chi_l = sigma_w^2 mu_1(q^l), mu_k = E phi'(h^l)^{2k}, s = 0 (orthogonal) or 1 (Gaussian).

Rectangular widths N_0..N_L, M = N_L: H_l is N_l x N_l, every shift is normalized by the
output width, H_1 = (||x^0||^2 / M) I, H_{l+1} = (||x^l||^2 / M) I + W D_l H_l D_l W^T
(W = W_{l+1}, N_{l+1} x N_l). In the limit ||x^l||^2 / M -> c_l = (N_l / M) qhat_l
(||x^l||^2 / N_l -> qhat_l = E phi(h^l)^2 per unit, the mean field being width-free;
c_0 = q0 N_0 / M). The nonzero spectrum of W A W^T, A = D_l H_l D_l, is that of A W^T W in
dimension N_l, whose law is nu_l boxtimes mu_l boxtimes w_l, w_l the law of W^T W in
dimension N_l (:func:`~freeness_lab.theory.jacobian_product.wtw_law`:
Marchenko-Pastur(N_l / N_{l+1}, sigma_w^2 N_{l+1} / N_l)
(Gaussian); delta_{sigma_w^2 N_{l+1} / N_l} if N_{l+1} >= N_l, else Bernoulli(N_{l+1} / N_l)
at sigma_w^2 (orthogonal)). Moving it to dimension N_{l+1} keeps the nonzero spectrum and
multiplies psi by r_l = N_l / N_{l+1} (write mu^(r)): moments times r_l, mass at 0
1 - r_l (1 - p_0), other masses times r_l. Both directions are this one formula: for r_l > 1
(a contracting layer) the mass of W^T W at 0 is 1 - 1/r_l, so 1 - r_l (1 - p_0) >= 0. Hence

    mu_1 = delta_{c_0},   mu_{l+1} = c_l + (nu_l boxtimes w_l boxtimes mu_l)^(r_l),
    S_{Y^(r)}(m) = S_Y(m / r) (1 + m) / (r + m),   G_{Y^(r)}(z) = r G_Y(z) + (1 - r) / z,

and the shift moves every atom by c_l: the atom at 0 of the product (dead units of D_l, the
rank deficit of W^T W, or 1 - r_l of the new dimensions when r_l < 1) becomes an atom of
mu_{l+1} at c_l, and mu_L's atom at c_{L-1} has mass 1 - r_{L-1} (1 - p_0). All r_l = 1 is
the square recursion (the square path is kept as it was, number for number). Mean and
variance (tr_{N_{l+1}} W A W^T = sigma_w^2 tr_{N_l} A; Var/mean^2 adds up in dimension N_l,
then m_k -> r m_k):

    m_1(l+1) = c_l + chi_l m_1(l),
    V(l+1)   = chi_l^2 [(V(l) + m_1(l)^2 (mu_2/mu_1^2 + v_l)) / r_l - m_1(l)^2],

v_l = Var/mean^2 of w_l: r_l (Gaussian), max(0, r_l - 1) (orthogonal); r_l = 1 gives the square
recursion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from freeness_lab.spec import NetworkSpec, SpecError
from freeness_lab.theory.jacobian_product import jacobian_product_law, weight_law, wtw_law
from freeness_lab.theory.laws import DiscreteLaw, SpectralLaw, d2_factor, delta
from freeness_lab.theory.log_terms import LogTerms
from freeness_lab.theory.meanfield import (
    d2_law,
    fixed_point,
    post_activation_moments,
    preactivation_variances,
)
from freeness_lab.theory.products import (
    Factor,
    FreeProduct,
    FreeProductLaw,
    ShiftChainLaw,
    ShiftedLaw,
    ShiftLayer,
    change_dimension,
)

#: consecutive layers whose q^l agree to this relative precision share one D^2 factor
_SAME_Q = 1e-13


def _check_spec(spec: object) -> NetworkSpec:
    """``spec`` itself when it is a :class:`NetworkSpec`; a :class:`SpecError` (a
    ``ValueError``) naming ``spec`` otherwise."""
    if not isinstance(spec, NetworkSpec):
        raise SpecError("spec", f"must be a NetworkSpec, got {type(spec).__name__} {spec!r}")
    return spec


def _layer_qs(spec: NetworkSpec, at_fixed_point: bool) -> np.ndarray:
    if at_fixed_point:
        return np.full(spec.depth, fixed_point(spec.activation, spec.sigma_w, spec.sigma_b))
    return preactivation_variances(spec)


def _d2_groups(spec: NetworkSpec, qs: np.ndarray) -> list[tuple[SpectralLaw, list[int]]]:
    """Distinct laws of D^2 with the layers (0-based) that share them."""
    groups: list[tuple[float, list[int]]] = []
    for l, q in enumerate(qs):
        if groups and abs(q - groups[-1][0]) <= _SAME_Q * q:
            groups[-1][1].append(l)
        else:
            groups.append((float(q), [l]))
    near = spec.weights == "orthogonal"  # see d2_factor: MP factors keep G off the support
    return list(zip(_chained_factors(spec.activation, [q for q, _ in groups], near),
                    [layers for _, layers in groups], strict=True))


def _chained_factors(activation: str, qs, near: bool) -> list[SpectralLaw]:
    """The D^2 factors at the variances ``qs``, in order, each fit started from the
    previous one's (:func:`~freeness_lab.theory.laws.d2_factor` ``fit_from``)."""
    factors: list[SpectralLaw] = []
    for q in qs:
        factors.append(d2_factor(d2_law(activation, q), near_support=near,
                                 fit_from=factors[-1] if factors else None))
    return factors


def jacobian_law(spec: NetworkSpec, *, at_fixed_point: bool = False) -> FreeProductLaw:
    """Limit law of J J^T for a random MLP (width -> infinity).

    Parameters
    ----------
    spec : NetworkSpec
        Activation, ensemble, depth, sigma_w, sigma_b, q0; ``width`` is ignored, ``widths``
        (rectangular) enter through their ratios.
    at_fixed_point : bool
        Use q^l = q* in every layer instead of the non-stationary q^l from q0.

    Returns
    -------
    FreeProductLaw
        Exact moments (series), atoms (Belinschi), density / cdf / quantiles (Newton).

    Examples
    --------
    >>> law = jacobian_law(NetworkSpec("relu", "orthogonal", depth=4, width=1,
    ...                                sigma_w=2 ** 0.5))
    >>> law.moments(2)  # mean 1, variance L
    array([1., 5.])

    Raises
    ------
    SpecError
        (a ``ValueError``) naming ``spec`` when it is not a :class:`NetworkSpec`.
    """
    qs = _layer_qs(_check_spec(spec), at_fixed_point)
    groups = _d2_groups(spec, qs)
    label = f"J J^T: {spec.activation}, {spec.weights}, L={spec.depth}"
    if spec.is_square:
        factors = [Factor(law, len(layers)) for law, layers in groups]
        factors.append(Factor(weight_law(spec.weights, spec.sigma_w), spec.depth))
        return FreeProductLaw(FreeProduct(factors), label=label)
    d2_of_layer = {l: law for law, layers in groups for l in layers}
    return jacobian_product_law([d2_of_layer[l] for l in range(spec.depth)], spec.weights,
                                spec.sigma_w, widths=spec.layer_widths, label=label)


def fim_dual_law(spec: NetworkSpec, *, qhat: np.ndarray | None = None
                 ) -> ShiftChainLaw | ShiftedLaw | DiscreteLaw:
    """Limit law of H_L, the M x M dual of the single-input Fisher information (Hayase-Karakida),
    M = N_L the output width.

    mu_1 = delta_{c_0}, mu_{l+1} = c_l + (nu_l boxtimes w_l boxtimes mu_l)^(r_l) (module
    docstring), c_l = qhat_l N_l / M, r_l = N_l / N_{l+1}; square widths: c_l = qhat_l, r_l = 1,
    w_l = w. Depth 1 is delta_{c_0}; depth 2 is the free product
    nu_1 boxtimes w_1 boxtimes delta_{c_0}, moved to dimension N_2 when r_1 != 1, shifted by c_1
    (:class:`ShiftedLaw`: with orthogonal weights a scaled push-forward law, whose density has
    the singular points of phi'^2, possibly purely atomic); deeper networks are shift chains
    (:class:`ShiftChainLaw`, one change of dimension per layer).

    Parameters
    ----------
    spec : NetworkSpec
        ``width`` is ignored; rectangular ``widths`` enter through their ratios.
    qhat : array of L floats, optional
        Per-unit post-activation moments qhat_0..qhat_{L-1} (qhat_l ~ ||x^l||^2 / N_l); default
        the mean-field values (qhat_0 = q0). Passing a sample's ||x^l||^2 / N_l evaluates the
        prediction at the empirical shifts c_l = ||x^l||^2 / M, which removes their
        O(1/sqrt(M)) fluctuation from a comparison with that sample.

    Raises
    ------
    SpecError
        (a ``ValueError``) naming ``spec`` when it is not a :class:`NetworkSpec`.
    """
    _check_spec(spec)
    if qhat is None:
        qhat = post_activation_moments(spec)
    qhat = np.asarray(qhat, dtype=float)
    if qhat.shape[0] < spec.depth or not np.all(qhat[: spec.depth] > 0):
        raise ValueError(f"qhat: must hold depth = {spec.depth} positive values "
                         f"qhat_0..qhat_(L-1)")
    qs = preactivation_variances(spec)
    # see d2_factor: square MP factors keep G off the support; a change of dimension does
    # not (measured: Gaussian tanh, widths (30, 20, 60), certification failed without it)
    near = spec.weights == "orthogonal" or not spec.is_square
    nus = _chained_factors(spec.activation, qs[:-1], near)
    label = f"H_L: {spec.activation}, {spec.weights}, L={spec.depth}"
    if spec.is_square:
        return fim_dual_chain_law(nus, qhat[: spec.depth], spec.weights, spec.sigma_w,
                                  label=label)
    n = np.asarray(spec.layer_widths, dtype=float)
    shifts = qhat[: spec.depth] * n[: spec.depth] / n[-1]
    return fim_dual_chain_law(nus, shifts, spec.weights, spec.sigma_w,
                              ratios=n[1:-1] / n[2:], label=label + f", widths={spec.widths}")


def fim_dual_chain_law(d2_laws: Sequence[SpectralLaw], shifts: Sequence[float], weights: str,
                       sigma_w: float, *, ratios: Sequence[float] | None = None,
                       label: str = "") -> ShiftChainLaw | ShiftedLaw | DiscreteLaw:
    """Law of H_L by the Hayase-Karakida recursion from given laws of D_l^2 and shifts:
    mu_1 = delta_{c_0}, mu_{l+1} = c_l + (nu_l boxtimes w_l boxtimes mu_l)^(r_l), l = 1..L-1
    (module docstring; square: r_l = 1, w_l = w).

    With the mean-field nu_l and c_l = qhat_l N_l / N_L this is :func:`fim_dual_law`; with one
    sampled network's empirical laws of D_l^2 and its own shifts c_l = (||x^l||^2 + beta) / M
    (beta = 1 with the bias parameters, M = N_L) it is the free prediction at that network's
    marginals.

    Parameters
    ----------
    d2_laws : sequence of L - 1 SpectralLaw
        nu_1..nu_{L-1} (D_L does not enter H_L).
    shifts : sequence of L floats
        c_0..c_{L-1} > 0.
    weights : {"orthogonal", "gaussian"}
    sigma_w : float
    ratios : sequence of L - 1 floats, optional
        r_l = N_l / N_{l+1}, l = 1..L-1, of a rectangular network: W_{l+1} is N_{l+1} x N_l and
        w_l the law of W_{l+1}^T W_{l+1} in dimension N_l (the spec's conventions). Default
        square (all 1: the square recursion, unchanged).
    label : str

    Returns
    -------
    DiscreteLaw (L = 1), ShiftedLaw (L = 2) or ShiftChainLaw
    """
    shifts = np.asarray(shifts, dtype=float)
    if shifts.shape != (len(d2_laws) + 1,) or not np.all(shifts > 0):
        raise ValueError(f"shifts: must hold len(d2_laws) + 1 = {len(d2_laws) + 1} positive "
                         f"values, got {shifts.tolist()}")
    w = weight_law(weights, sigma_w)
    if ratios is not None:
        ratios = np.asarray(ratios, dtype=float)
        if ratios.shape != (len(d2_laws),) or not np.all((ratios > 0) & np.isfinite(ratios)):
            raise ValueError(f"ratios: must hold len(d2_laws) = {len(d2_laws)} finite values "
                             f"> 0, got {ratios.tolist()}")
        if np.all(ratios == 1):
            ratios = None
    if not len(d2_laws):
        return delta(float(shifts[0]))
    if ratios is None and len(d2_laws) == 1:
        product = FreeProduct([Factor(d2_laws[0]), Factor(w), Factor(delta(float(shifts[0])))])
        return ShiftedLaw(FreeProductLaw(product), float(shifts[1]), label=label)
    if len(d2_laws) == 1:  # c_1 + (nu_1 boxtimes w_1 boxtimes delta_{c_0})^(r_1)
        r = float(ratios[0])
        laws = (d2_laws[0], wtw_law(weights, sigma_w, 1.0 / r), delta(float(shifts[0])))
        # S_{Y^(r)}(m) = S_Y(m / r) (1 + m) / (r + m) (module docstring)
        product = FreeProduct([Factor(law, 1, 1.0 / r) for law in laws],
                              LogTerms(0.0, np.array([[1.0, 1.0, 1.0], [-1.0, r, 1.0]])))
        atoms = change_dimension(FreeProduct([Factor(law) for law in laws]).atoms(), r)
        return ShiftedLaw(FreeProductLaw(product, atoms=atoms), float(shifts[1]),
                          label=label)
    if ratios is None:
        layers = [ShiftLayer((Factor(nu), Factor(w)), float(c))
                  for nu, c in zip(d2_laws, shifts[1:], strict=True)]
    else:
        layers = [ShiftLayer((Factor(nu), Factor(wtw_law(weights, sigma_w, 1.0 / r))),
                             float(c), float(r))
                  for nu, c, r in zip(d2_laws, shifts[1:], ratios, strict=True)]
    return ShiftChainLaw(float(shifts[0]), layers, label=label)


def fim_dual_mean_variance(spec: NetworkSpec) -> np.ndarray:
    """Rows l = 1..L: (m_1, variance) of mu_l by the closed recursion of the module docstring
    (square or rectangular; an independent check of the series moments of
    :func:`fim_dual_law`); a :class:`SpecError` naming ``spec`` when it is not a
    :class:`NetworkSpec`."""
    qs = preactivation_variances(_check_spec(spec))
    n = np.asarray(spec.layer_widths, dtype=float)
    shifts = post_activation_moments(spec)[: spec.depth] * n[: spec.depth] / n[-1]
    s = 0.0 if spec.weights == "orthogonal" else 1.0
    mean, var = shifts[0], 0.0
    out = [(mean, var)]
    for l in range(1, spec.depth):
        mu = d2_law(spec.activation, qs[l - 1]).moments(2)
        chi = spec.sigma_w**2 * mu[0]
        r = n[l] / n[l + 1]
        if r == 1:
            var = chi**2 * var + chi**2 * mean**2 * (mu[1] / mu[0] ** 2 - 1.0 + s)
        else:
            v = r if spec.weights == "gaussian" else max(0.0, r - 1.0)
            var = chi**2 * ((var + mean**2 * (mu[1] / mu[0] ** 2 + v)) / r - mean**2)
        mean = shifts[l] + chi * mean
        out.append((mean, var))
    return np.array(out)
