"""Independent per-point baseline for ``bench_newton.py``: scipy root on the subordination
equations, one grid point at a time, from a far-field continuation start.

It shares no code with :mod:`freeness_lab.theory.newton`; it uses only the law objects'
exact moments, atoms, explicit S-transforms (``log_s_terms``) and quadratures.

Equations (square networks; ``docs/conventions.md``, section "Objects and conventions").
For mu = boxtimes_i mu_i^{k_i} and zeta in the upper half-plane write
m = zeta G(zeta) - 1 = psi_mu(1/zeta). Since chi_mu(m) = 1/zeta and chi = S m / (1 + m),

    zeta * m / (1 + m) * prod_i S_i(m)^{k_i} = 1.

An explicit factor enters through S_i(m) = exp(c_i) prod_j (alpha_j + beta_j m)^{e_j}; an
implicit one (law of phi'(h)^2 for a smooth phi) through its subordination point omega_i =
chi_i(m), S_i(m) = omega_i (1 + m) / m, with psi_i(omega_i) = m written as

    1 + psi_i(omega_i) = sum_t w_t / (1 - omega_i t) = 1 + m

(no cancellation where m -> -1). The main unknown is w = m + 1 - p_0, p_0 the mass of mu
at 0, so that the factor whose zero mass is p_0 gives p_0 + m = w with no cancellation as
zeta -> 0, and the continuous part of G is w / zeta. Every equation is taken in log form
(sums of principal logs, residual reduced modulo 2 pi i), so that deep products neither
overflow nor underflow. Unknowns (w, omega_1..omega_K) are complex, passed to
``scipy.optimize.root`` (MINPACK hybrd, analytic Jacobian) as real pairs.

Continuation: from zeta = x + i Y (far above the support: m from the moment series, each
omega_i from a scalar Newton solve of psi_i(omega) = m), Im zeta goes down geometrically to
eps; every step is solved by ``root`` from a secant prediction, and accepted when root
succeeds, w and every omega_i stay in the closed lower half-plane and the solution is within
30% (relative) of the prediction; otherwise the step is halved. The final point is solved to
xtol = 1e-13.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import root


class SubordinationBaseline:
    """Per-point solver of the subordination equations of a square ``FreeProductLaw``.

    Parameters
    ----------
    law : FreeProductLaw
        Its ``product.factors`` (all with argument scale 1) and ``atoms`` are used.
    """

    def __init__(self, law):
        prod = law.product
        if any(f.scale != 1.0 for f in prod.factors) or len(prod.extra.rows):
            raise NotImplementedError("baseline: square networks only")
        atoms = law.atoms
        self.p0 = float(atoms[atoms[:, 0] == 0, 1].sum()) if len(atoms) else 0.0
        self.c = 1.0 - self.p0
        self.other_atoms = atoms[atoms[:, 0] > 0] if len(atoms) else np.empty((0, 2))
        self.moments = law.moments(8)
        self.scale = float(np.max(np.abs(law.moments(24)) ** (1.0 / np.arange(1, 25))))
        const = 0.0
        n_total = 0.0
        rows = []  # (e, alpha, beta): e log(alpha + beta m)
        self.implicit = []  # (nodes, weights, power, mean)
        for f in prod.factors:
            n_total += f.power
            terms = f.law.log_s_terms
            if terms is None:
                t, wt = f.law.nodes_weights
                self.implicit.append((np.asarray(t), np.asarray(wt), float(f.power),
                                      float(f.law.moments(1)[0])))
                continue
            c, r = terms
            const += f.power * c
            for e, a, b in np.reshape(r, (-1, 3)):
                rows.append((f.power * e, a, b))
        k_imp = sum(p for _, _, p, _ in self.implicit)
        # zeta m / (1 + m) prod S: log m with power 1 - k_imp, log(1 + m) with k_imp - 1
        rows += [(1.0 - k_imp, 0.0, 1.0), (k_imp - 1.0, 1.0, 1.0)]
        self.const = const
        # in the variable w = m + c: alpha + beta m = (alpha - beta c) + beta w
        e, a, b = np.array(rows, dtype=float).T
        a2 = a - b * self.c
        a2[np.abs(a2) <= 1e-14 * np.maximum(np.abs(a), np.abs(b * self.c))] = 0.0
        self.e, self.a, self.b = e, a2, b
        self.n = 1 + len(self.implicit)

    # -- equations
    def _logs(self, z: np.ndarray, zeta: complex):
        """Arguments of every log of the equations, and the pieces of their derivatives."""
        w = z[0]
        lin = self.a + self.b * w
        one_m = w + self.p0  # 1 + m
        om = z[1:]
        one_psi = np.empty(len(self.implicit), dtype=complex)
        dpsi = np.empty(len(self.implicit), dtype=complex)
        for i, (t, wt, _, _) in enumerate(self.implicit):
            inv = 1.0 / (1.0 - om[i] * t)
            one_psi[i] = np.sum(wt * inv)
            dpsi[i] = np.sum(wt * t * inv * inv)
        args = np.concatenate([[zeta, one_m], lin, om, one_psi])
        return args, dpsi

    def _set_branch(self, z: np.ndarray, zeta: complex, *, principal: bool = False) -> None:
        """Move the reference of the continued logs, log a = L_ref + Log(a / a_ref), to the
        point (z, zeta): principal logs there, or continued from the current reference."""
        args, _ = self._logs(z, zeta)
        self._ref_logs = np.log(args) if principal else \
            self._ref_logs + np.log(args / self._ref_args)
        self._ref_args = args

    def _complex(self, z: np.ndarray, zeta: complex) -> tuple[np.ndarray, np.ndarray]:
        """Residual F (n,) and complex Jacobian A (n, n), logs continued from the reference."""
        args, dpsi = self._logs(z, zeta)
        L = self._ref_logs + np.log(args / self._ref_args)
        k = len(self.implicit)
        nl = len(self.e)
        l_zeta, l_one_m, l_lin = L[0], L[1], L[2:2 + nl]
        l_om, l_psi = L[2 + nl:2 + nl + k], L[2 + nl + k:]
        one_m, lin, om, one_psi = args[1], args[2:2 + nl], args[2 + nl:2 + nl + k], \
            args[2 + nl + k:]
        powers = np.array([p for _, _, p, _ in self.implicit])
        F = np.empty(self.n, dtype=complex)
        A = np.zeros((self.n, self.n), dtype=complex)
        F[0] = l_zeta + self.const + np.sum(self.e * l_lin) + np.sum(powers * l_om)
        A[0, 0] = np.sum(self.e * self.b / lin)
        A[0, 1:] = powers / om
        F[1:] = l_psi - l_one_m
        idx = np.arange(1, self.n)
        A[idx, idx] = dpsi / one_psi
        A[1:, 0] = -1.0 / one_m
        return F, A

    def _real(self, y: np.ndarray, zeta: complex):
        z = y[: self.n] + 1j * y[self.n:]
        F, A = self._complex(z, zeta)
        J = np.block([[A.real, -A.imag], [A.imag, A.real]])
        return np.concatenate([F.real, F.imag]), J

    def _valid(self, z: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(z)) and np.all(z.imag <= 1e-9 * np.abs(z)))

    def _root(self, z0: np.ndarray, zeta: complex, xtol: float):
        sol = root(self._real, np.concatenate([z0.real, z0.imag]), args=(zeta,), jac=True,
                   method="hybr", options={"xtol": xtol})
        z = sol.x[: self.n] + 1j * sol.x[self.n:]
        ok = bool(sol.success) and self._valid(z) and np.max(np.abs(sol.fun)) < 1e-8
        return ok, z, sol.nfev

    # -- far field
    def _far_field(self, zeta: complex) -> np.ndarray:
        """m from the moment series, omega_i from psi_i(omega) = m by scalar Newton."""
        m = sum(mk * zeta ** -(k + 1) for k, mk in enumerate(self.moments))
        z = np.empty(self.n, dtype=complex)
        z[0] = m + self.c
        for i, (t, wt, _, mean) in enumerate(self.implicit, start=1):
            om = m / mean
            for _ in range(20):
                inv = 1.0 / (1.0 - om * t)
                step = (np.sum(wt * inv) - 1.0 - m) / np.sum(wt * t * inv * inv)
                om = om - step
                if abs(step) <= 1e-15 * abs(om):
                    break
            z[i] = om
        return z

    def solve_point(self, x: float, eps: float, *, max_steps: int = 2000
                    ) -> tuple[complex, bool, int]:
        """Continuous part of G(x + i eps) (atoms removed), converged flag, root calls."""
        y = 8.0 * self.scale + 2.0 * abs(x)
        for _ in range(6):  # far-field start, raised until root converges there
            z0 = self._far_field(x + 1j * y)
            self._set_branch(z0, x + 1j * y, principal=True)
            ok, z, _ = self._root(z0, x + 1j * y, 1e-13)
            if ok:
                self._set_branch(z, x + 1j * y)
                break
            y *= 8.0
        if not ok:
            return complex(np.nan, np.nan), False, 0
        t, t_end = np.log(y), np.log(eps)
        h = 1.0
        prev_t, prev_z = None, None
        calls = 0
        while t > t_end and calls < max_steps:
            t_new = max(t - h, t_end)
            final = t_new == t_end
            pred = z if prev_z is None else z + (z - prev_z) * (t_new - t) / (t - prev_t)
            if not self._valid(pred):
                pred = z
            ok, z_new, _ = self._root(pred, x + 1j * np.exp(t_new), 1e-13 if final else 1e-9)
            calls += 1
            close = np.max(np.abs(z_new - pred) / np.maximum(np.abs(pred), 1e-300)) <= 0.3
            if ok and close:
                prev_t, prev_z, t, z = t, z, t_new, z_new
                self._set_branch(z, x + 1j * np.exp(t))
                h *= 2.0
            else:
                h *= 0.5
                if h < 1e-7:
                    break
        if t > t_end:
            return complex(np.nan, np.nan), False, calls
        zeta = x + 1j * eps
        g = z[0] / zeta - np.sum(self.other_atoms[:, 1] / (zeta - self.other_atoms[:, 0]))
        return complex(g), True, calls

    def density(self, x: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """-Im G_cont / pi at x + i eps, point by point; (density, converged, root calls)."""
        rho = np.full(len(x), np.nan)
        conv = np.zeros(len(x), dtype=bool)
        calls = 0
        for j, (xi, ei) in enumerate(zip(x, eps, strict=True)):
            g, conv[j], c = self.solve_point(float(xi), float(ei))
            rho[j] = -g.imag / np.pi
            calls += c
        return rho, conv, calls
