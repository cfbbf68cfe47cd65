"""The AAA rational approximation with an updated QR factorization (:func:`aaa`).

AAA (Nakatsukasa, Sete & Trefethen, "The AAA algorithm for rational approximation", SIAM J.
Sci. Comput. 40 (2018) A1494) fits f on sample points z by a barycentric form

    r(z) = sum_j w_j f_j / (z - z_j) / sum_j w_j / (z - z_j),

adding at step m the sample point where |f - r| is largest to the support points z_j, then
taking w as the right singular vector of the smallest singular value of the Loewner matrix
A_ij = (f_i - f_j) / (z_i - z_j) over the other sample points. ``scipy.interpolate.AAA``
computes a full SVD of A (M rows, m columns) at every step: O(M m^2) each, O(M m^3) in all,
most of a fit's time for the few hundred points and ~80 terms of a contour rule's G.

Here A is kept as A = Q R, Q (M x m) with orthonormal columns, R (m x m) square, the
support points' rows of A set to 0 (a zero row changes neither the singular values nor the
right singular vectors, so it is the least-squares problem over the other points):

* a new support point's row is zeroed in Q, and Q made orthonormal again by the inverse
  square root of its Gram matrix I - v v^H (a rank-one correction, :func:`_drop_row`; R
  then is no longer triangular); Householder QR of A where the row's leverage |v|^2 passes
  ``LEVERAGE``;
* the new column is orthogonalized against Q by classical Gram-Schmidt, a second pass
  where the first removed more than half of it (Daniel, Gragg, Kaufman & Stewart, Math.
  Comp. 30 (1976) 772; "twice is enough": Giraud, Langou & Rozloznik, Comput. Math. Appl.
  50 (2005) 1069); Householder QR of A where what is left is below ``LOST`` of it;
* w is read from the SVD of R (m x m): A and R share their singular values and right
  singular vectors. Each step costs O(M m + m^3) instead of O(M m^2).

What differs from scipy's AAA (1.15-1.17), everything else following it step by step (the
tolerance rtol max |f|, the first residual f - mean f, the switch to column-scaled SVDs once
the condition number passes 1 / (3 eps), the sum of the singular vectors of a repeated
smallest singular value, the null space once the rows are fewer than the columns, the
removal of Froissart doublets): the factorization above, for the weights of the steps; the
final weights come from the SVD of A itself, as in scipy; the clean-up solves its
least-squares problem by a thin SVD.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

__all__ = ["AAAFit", "aaa"]

#: a new column whose remainder after Gram-Schmidt is below this fraction of its norm lies
#: in the span of the others to rounding: the factorization is rebuilt from A
LOST = 1e3 * np.finfo(float).eps
#: a row whose leverage |Q[j, :]|^2 passes this is dropped by rebuilding the factorization
LEVERAGE = 0.5
#: Gram-Schmidt passes at most before the factorization is rebuilt from A
PASSES = 4


class AAAFit:
    """A barycentric rational function r(z) = sum_j w_j f_j / (z - z_j) / sum_j w_j / (z - z_j).

    Attributes
    ----------
    support_points, support_values, weights : complex ndarray
        z_j, f_j, w_j.
    errors : ndarray
        max |f - r| on the sample points after each AAA step (NaN before the last of the
        support points it started from, :func:`aaa` ``start``).
    """

    def __init__(self, zj: np.ndarray, fj: np.ndarray, wj: np.ndarray, errors: np.ndarray):
        self.support_points, self.support_values, self.weights = zj, fj, wj
        self.errors = errors
        self._poles = None

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """r at z (1-d); at a support point, its value."""
        z = np.asarray(z, dtype=complex)
        with np.errstate(divide="ignore", invalid="ignore"):
            C = 1.0 / (z[:, None] - self.support_points)
            r = (C @ (self.weights * self.support_values)) / (C @ self.weights)
        at, j = np.nonzero(z[:, None] == self.support_points)
        r[at] = self.support_values[j]
        return r

    def poles(self) -> np.ndarray:
        """The finite poles (computed once): eigenvalues of the arrowhead pencil (E, B),
        E = [[0, w^T], [1, diag(z_j)]], B = diag(0, 1, ..., 1)."""
        if self._poles is None:
            self._poles = self._pencil_eigenvalues()
        return self._poles

    def _pencil_eigenvalues(self) -> np.ndarray:
        m = len(self.weights)
        B = np.eye(m + 1, dtype=complex)
        B[0, 0] = 0
        E = np.zeros((m + 1, m + 1), dtype=complex)
        E[0, 1:], E[1:, 0] = self.weights, 1
        E[np.arange(1, m + 1), np.arange(1, m + 1)] = self.support_points
        pol = scipy.linalg.eigvals(E, B, check_finite=False)
        return pol[np.isfinite(pol)]

    def residues(self, poles: np.ndarray) -> np.ndarray:
        """Residues at ``poles``: N(p) / D'(p) of the barycentric numerator and denominator."""
        with np.errstate(divide="ignore", invalid="ignore"):
            C = 1.0 / (poles[:, None] - self.support_points)
            return (C @ (self.support_values * self.weights)) / -((C * C) @ self.weights)


def aaa(z: np.ndarray, f: np.ndarray, *, rtol: float, max_terms: int,
        clean_up_tol: float, start: np.ndarray | None = None) -> AAAFit:
    """AAA on (z, f) until max |f - r| <= rtol max |f| or ``max_terms`` terms, then the
    removal of Froissart doublets (module docstring; scipy's ``AAA(z, f, rtol=rtol,
    max_terms=max_terms, clean_up_tol=clean_up_tol)``).

    ``start``: points (complex) whose nearest sample points are the first support points,
    all at once (the support points of a fit of a nearby function: the greedy steps then
    go on from them, a few instead of dozens)."""
    z, f = np.asarray(z, dtype=complex), np.asarray(f, dtype=complex)
    keep = np.isfinite(f)
    z, uni = np.unique(z[keep], return_index=True)
    f = f[keep][uni]
    first = np.empty(0, dtype=np.int64)
    if start is not None and len(start):
        first = np.unique(np.argmin(np.abs(np.asarray(start)[:, None] - z), axis=1))
        first = first[:max(min(max_terms, len(z) // 2) - 1, 0)]
    zj, fj, wj, errors = _weights(z, f, rtol, max_terms, first)
    fit = AAAFit(zj, fj, wj, errors)
    return _clean_up(fit, z, f, clean_up_tol)


def _weights(z, f, rtol, max_terms, first):
    """The AAA steps (module docstring), from the support points ``first`` (indices) at
    once: (support points, values, weights, errors)."""
    M = len(z)
    atol = rtol * np.abs(f).max()
    mask = np.ones(M, dtype=bool)
    C = np.zeros((M, max_terms), dtype=complex)  # Cauchy matrix
    A = np.zeros((M, max_terms), dtype=complex)  # Loewner matrix, support rows 0
    J = np.empty(max_terms, dtype=np.int64)
    errors = np.empty(max_terms)
    Q = np.zeros((M, 0), dtype=complex)
    R = np.zeros((0, 0), dtype=complex)
    residual = f - f.mean()
    scaled = False
    m0 = len(first)
    if m0:
        J[:m0] = first
        mask[first] = False
        with np.errstate(divide="ignore", invalid="ignore"):
            C[:, :m0] = 1.0 / (z[:, None] - z[first])
        C[~mask, :m0] = 0
        A[:, :m0] = np.where(mask[:, None], (f[:, None] - f[first]) * C[:, :m0], 0)
        Q, R = scipy.linalg.qr(A[:, :m0], mode="economic", check_finite=False)
        w, scaled = _smallest(R, scaled)
        N, D = (C[:, :m0] @ np.stack([w * f[first], w], axis=1)).T
        N[~mask], D[~mask] = f[~mask], 1.0
        residual = f - N / D
        errors[:m0 - 1] = np.nan  # no step made them
        errors[m0 - 1] = np.abs(residual).max()
        if errors[m0 - 1] <= atol:
            w, _ = _smallest(A[mask, :m0], scaled)
            nz = w != 0
            return z[J[:m0]][nz], f[J[:m0]][nz], w[nz], errors[:m0]
    rows = M - m0
    for m in range(m0, max_terms):
        j = int(np.flatnonzero(mask)[np.argmax(np.abs(residual[mask]))])
        J[m] = j
        mask[j] = False
        # the point's row leaves the least-squares problem: A <- A - e_j A[j, :]
        if m and R.shape[0] == m:  # (not once the rows are fewer than the columns)
            Q, R = _drop_row(Q, R, j, A[:, :m])
        A[j, :m] = 0
        with np.errstate(divide="ignore", invalid="ignore"):
            C[:, m] = 1.0 / (z - z[j])
        C[~mask, m] = 0  # never read at support points (interpolated there)
        A[:, m] = np.where(mask, (f - f[j]) * C[:, m], 0)
        rows = M - m - 1
        if rows < m + 1:  # fewer rows than columns: a null vector, as scipy
            V = scipy.linalg.null_space(A[mask, :m + 1], check_finite=False)
            w = V.sum(axis=-1) / np.sqrt(V.shape[-1])
        else:
            Q, R = _append_column(Q, R, A[:, m], A[:, :m + 1])
            w, scaled = _smallest(R, scaled)
        # r on every point (the support points interpolated)
        N, D = (C[:, :m + 1] @ np.stack([w * f[J[:m + 1]], w], axis=1)).T
        N[~mask], D[~mask] = f[~mask], 1.0
        residual = f - N / D
        errors[m] = np.abs(residual).max()
        if errors[m] <= atol:
            break
    if rows >= m + 1:  # the final weights from the SVD of A itself
        w, _ = _smallest(A[mask, :m + 1], scaled)
    nz = w != 0
    return z[J[:m + 1]][nz], f[J[:m + 1]][nz], w[nz], errors[:m + 1]


def _drop_row(Q, R, j, A):
    """A = Q R with row j of A set to 0 (row j of Q set to 0: A' = Q' R), and Q' made
    orthonormal again: Q'^H Q' = I - v v^H, v = conj(Q[j, :]), = S^2 with
    S = I - alpha v v^H, alpha = 1 / (1 + c), c = sqrt(1 - |v|^2); then A' = (Q' S^-1) (S R),
    S^-1 = I + (alpha / c) v v^H (R stays square, no longer triangular: its singular values
    and right singular vectors are A's). Rebuilt from A by Householder QR when
    |v|^2 > ``LEVERAGE`` (S far from I)."""
    v = Q[j].conj()
    v2 = float(np.vdot(v, v).real)
    if v2 > LEVERAGE:
        A = A.copy()
        A[j] = 0
        return scipy.linalg.qr(A, mode="economic", check_finite=False)
    c = math.sqrt(1.0 - v2)
    alpha = 1.0 / (1.0 + c)
    Q[j] = 0
    Q += np.multiply.outer(Q @ ((alpha / c) * v), v.conj())
    R -= np.multiply.outer(alpha * v, v.conj() @ R)
    return Q, R


def _append_column(Q, R, c, A):
    """The QR factorization with column c appended: classical Gram-Schmidt, repeated while
    a pass removes more than half of what is left (twice is enough, bar the rare third);
    rebuilt from A (all columns) by Householder QR where c lies numerically in span Q."""
    r = np.zeros(R.shape[0], dtype=complex)
    v, before = c, np.linalg.norm(c)
    for _ in range(PASSES):
        h = (v.conj() @ Q).conj()  # Q^H v without a conjugate copy of Q
        v = v - Q @ h
        r += h
        rho = np.linalg.norm(v)
        if rho > 0.5 * before:
            break
        before = rho
    else:
        return scipy.linalg.qr(A, mode="economic", check_finite=False)
    if rho <= LOST * np.linalg.norm(c):
        return scipy.linalg.qr(A, mode="economic", check_finite=False)
    m = R.shape[0]
    R1 = np.zeros((m + 1, m + 1), dtype=complex)
    R1[:m, :m], R1[:m, m], R1[m, m] = R, r, rho
    return np.column_stack([Q, v / rho]), R1


def _smallest(B: np.ndarray, scaled: bool) -> tuple[np.ndarray, bool]:
    """The AAA weights from B (R, or A itself): the right singular vector of the smallest
    singular value (the normalized sum over a repeated one), of B scaled to unit columns
    once its condition number passes 1 / (3 eps) (scipy's rule); and whether scaled."""
    if not scaled:
        _, s, Vh = np.linalg.svd(B, full_matrices=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = bool(s[0] / s[-1] > 1 / (3 * np.finfo(float).eps))
    if scaled:
        norm = np.linalg.norm(B, axis=0)
        _, s, Vh = np.linalg.svd(B / norm, full_matrices=False)
    least = s == s.min()
    w = Vh.conj()[least].sum(axis=0) / np.sqrt(least.sum())
    return (w / norm if scaled else w), scaled


def _clean_up(fit: AAAFit, z: np.ndarray, f: np.ndarray, tol: float) -> AAAFit:
    """Froissart doublets removed (scipy's ``AAA.clean_up``): poles whose residue is below
    tol times the geometric mean of |f| times their distance to the nearest sample point;
    the support point nearest each leaves, and the weights solve the least-squares problem
    on the other points again."""
    poles = fit.poles()
    if not len(poles):
        return fit
    with np.errstate(divide="ignore"):
        gmean = np.exp(np.log(np.abs(f)).mean())
    dist = np.abs(poles[:, None] - z).min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        spurious = np.abs(fit.residues(poles)) / dist < tol * gmean
    if not spurious.any():
        return fit
    nearest = np.argmin(np.abs(fit.support_points[:, None] - poles[spurious]), axis=0)
    zj = np.delete(fit.support_points, nearest)
    fj = np.delete(fit.support_values, nearest)
    rest = ~np.isin(z, zj)
    C = 1.0 / (z[rest][:, None] - zj)
    A = f[rest][:, None] * C - C * fj
    m = len(zj)
    _, _, Vh = scipy.linalg.svd(A, full_matrices=A.shape[0] < m, check_finite=False)
    return AAAFit(zj, fj, Vh[m - 1].conj(), fit.errors)
