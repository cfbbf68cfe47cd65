"""ChainSystem (all layers at once) against a straightforward per-layer evaluation: each
layer's log-terms as its own TermsInR, its implicit equation by implicit_equation, the
block-tridiagonal Jacobian assembled densely and solved by LAPACK."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from freeness_lab import NetworkSpec
from freeness_lab.theory.branches import log_upper
from freeness_lab.theory.limits import fim_dual_law
from freeness_lab.theory.log_terms import TermsInR
from freeness_lab.theory.newton import ChainSystem
from freeness_lab.theory.newton.implicit import implicit_equation


def _in_r(rows, lay, c):
    rows = np.array(np.reshape(rows, (-1, 3)), dtype=float)
    rows[:, 2] /= lay.ratio
    return TermsInR(rows, c)


def _reference(system, v, zeta):
    """(F, dense J, dF/dzeta) at one point, layer by layer (the module docstring's P, Q, R)."""
    n = system.n
    F = np.zeros(3 * n, dtype=complex)
    J = np.zeros((3 * n, 3 * n), dtype=complex)
    dF = np.zeros(3 * n, dtype=complex)
    L_prev = None
    for l, lay in enumerate(system.layers):
        c = 1.0 - lay.zero_mass
        r, s, u = v[3 * l], v[3 * l + 1], v[3 * l + 2]
        r1 = np.array([r])  # TermsInR writes into its output where |e^r| is large
        i = 3 * l
        xi = lay.qhat_prev + np.exp(s)
        dlog_xi = np.exp(s) / xi
        rows = [lay.terms.rows.reshape(-1, 3)]
        if lay.nu is not None:
            rows.append(np.array([[1.0, 1.0, 1.0], [-1.0, 0.0, 1.0]]))
        (val,), (slope,) = _in_r(np.concatenate(rows), lay, c).value_and_slope(r1)
        top = log_upper(zeta - lay.qhat) if l == n - 1 else v[3 * l + 4]
        F[i] = -log_upper(xi) + lay.terms.const + val + top
        J[i, i], J[i, i + 1] = slope, -dlog_xi
        if l < n - 1:
            J[i, i + 4] = 1.0
        else:
            dF[i] = 1.0 / (zeta - lay.qhat)
        (L,), (dL,) = _in_r([[1.0, 1.0, 1.0]], lay, c).value_and_slope(r1)
        F[i + 1] = L - log_upper(xi) + s
        J[i + 1, i], J[i + 1, i + 1] = dL, 1.0 - dlog_xi
        if l > 0:
            F[i + 1] -= L_prev[0][0]
            J[i + 1, i - 3] = -L_prev[1][0]
        L_prev = TermsInR(np.array([[1.0, 1.0, 1.0]]), c).value_and_slope(r1)
        if lay.nu is None:
            F[i + 2], J[i + 2, i + 2] = u, 1.0
        else:
            parts = lay.nu.rule.psi_parts(np.exp(np.array([u])))
            (f,), (g,), (h,) = implicit_equation(
                parts, _in_r([[1.0, 0.0, 1.0]], lay, c),
                _in_r([[1.0, 1.0 - lay.nu.atom, 1.0]], lay, c), r1)
            F[i + 2], J[i + 2, i + 2], J[i + 2, i] = f, g, h
            F[i] += u
            J[i, i + 2] = 1.0
    return F, J, dF


def _chains():
    tanh = dict(sigma_w=1.1, sigma_b=0.05)
    square = fim_dual_law(NetworkSpec("tanh", "orthogonal", depth=5, width=1, **tanh)).system
    rect = fim_dual_law(NetworkSpec("tanh", "orthogonal", depth=4, width=1,
                                    widths=(64, 128, 32, 96, 64), **tanh)).system
    relu = fim_dual_law(NetworkSpec("relu", "gaussian", depth=3, width=1,
                                    widths=(64, 128, 32, 64), sigma_w=2**0.5,
                                    sigma_b=0.0)).system
    # an implicit factor with an atom at 0 (its log(1 - p + m / r) is a term of its own)
    atom = ChainSystem([dataclasses.replace(lay, nu=dataclasses.replace(lay.nu, atom=0.2))
                        if l == 1 else lay for l, lay in enumerate(rect.layers)])
    return {"square": square, "rectangular": rect, "relu rectangular": relu, "atom": atom}


CHAINS = _chains()


@pytest.mark.parametrize("name", list(CHAINS))
def test_vectorized_system_equals_per_layer_evaluation(name):
    system = CHAINS[name]
    rng = np.random.default_rng(3)
    top = system.layers[-1]
    scale = top.qhat + top.y_moments[0]  # the mean of mu_L
    zeta = scale * (rng.uniform(-1.0, 3.0, 40) + 1j * rng.uniform(0.2, 2.0, 40))
    # far-field starts, their moduli scaled by e^{N(0, 0.2^2)} (the half-planes kept); omega
    # off the real axis, where log psi of a real psi may take either side of its cut
    v = system.initial(zeta) + 0.2 * rng.normal(size=(40, system.size))
    omega = v[:, 3 * system.implicit_layers + 2]
    inside = np.all(np.abs(np.sin(omega.imag)) > 1e-8, axis=-1) & system.valid(v)
    assert inside.sum() >= 20
    v, zeta = v[inside], zeta[inside]
    step, tangent = system.newton_step(v, zeta), system.tangent(v, zeta)
    residual = system.residual(v, zeta)
    for p in range(len(zeta)):
        F, J, dF = _reference(system, v[p], zeta[p])
        ref_step, ref_tangent = -np.linalg.solve(J, F), -np.linalg.solve(J, dF)
        scale = np.abs(ref_step).max()
        assert np.abs(step[p] - ref_step).max() <= 1e-12 * scale
        assert np.abs(tangent[p] - ref_tangent).max() <= 1e-12 * np.abs(ref_tangent).max()
        assert abs(residual[p] - np.abs(F).max()) <= 1e-13 * np.abs(F).max()
    # one point, no batch axis: the same numbers
    np.testing.assert_allclose(system.newton_step(v[0], zeta[0]), step[0], rtol=1e-14)
