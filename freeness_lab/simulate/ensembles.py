"""Random matrix ensembles for the weights: Haar orthogonal / unitary, Gaussian.

Haar sampling follows Mezzadri, "How to generate random matrices from the classical compact
groups" (Notices AMS 54, 2007): if G = QR is the QR decomposition of a real (complex) Ginibre
matrix, then Q diag(r_ii / |r_ii|) is Haar distributed on O(n) (U(n)). Plain Q is NOT Haar:
LAPACK's Householder convention ties the signs of diag(R) to G, so e.g. Q[0, 0] < 0 always
and det Q = (-1)^(n-1) always. :func:`plain_qr_orthogonal` keeps that wrong sampler so the
tests can prove they tell it apart from the right one.

Conventions (``docs/conventions.md`` section 2 and :class:`freeness_lab.spec.NetworkSpec`):

- Gaussian weights: W_ij ~ N(0, sigma^2 / N_in), shape (N_out, N_in).
- Orthogonal weights: W = sigma * sqrt(max(1, N_out / N_in)) * O with O the N_out x N_in
  top-left block of a Haar orthogonal matrix of size max(N_out, N_in). The block is drawn as
  the first min(N_out, N_in) columns of a Haar matrix (transposed when N_out < N_in), which has
  the same law since O and O^T are both Haar, at the cost of an n x k QR instead of n x n.

Every sampler takes ``rng`` (a ``numpy.random.Generator`` or an int seed, see
:func:`freeness_lab.rng.as_generator`) and an optional ``batch`` size for stacks of small
matrices (shape ``(batch, n_out, n_in)``). Unbatched real QR goes straight to LAPACK
(``dgeqrf`` + ``dorgqr`` in place, on a Fortran-ordered Gaussian draw): no copy, about half
the time of ``numpy.linalg.qr`` at n >= 1000. Batched draws use ``numpy.linalg.qr`` on the
stack; the two paths give different (equally Haar) matrices for the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from freeness_lab.rng import RngLike, as_generator
from freeness_lab.spec import WEIGHT_ENSEMBLES

__all__ = [
    "gaussian_matrix",
    "haar_columns",
    "haar_orthogonal",
    "haar_unitary",
    "orthogonal_block",
    "plain_qr_orthogonal",
    "sample_weight",
    "single_blas_thread",
]


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < 1:
        raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
    return int(value)


def _check_batch(batch: object) -> int | None:
    return None if batch is None else _check_size("batch", batch)


def _check_scale(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not (
            math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")
    return float(value)


def _qr_lapack(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q (n x k, overwriting the Fortran-ordered ``g``) and diag(R) of a real n x k matrix."""
    n, k = g.shape
    lwork = max(1, int(lapack.dgeqrf_lwork(n, k)[0]))
    qr, tau, _, info = lapack.dgeqrf(g, lwork=lwork, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dgeqrf failed with info={info}")
    r_diag = qr.diagonal().copy()
    q, _, info = lapack.dorgqr(qr, tau, lwork=lwork, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dorgqr failed with info={info}")
    return q, r_diag


def _ginibre_q(n: int, k: int, gen: np.random.Generator, batch: int | None,
               complex_: bool) -> tuple[np.ndarray, np.ndarray]:
    """Q factor (n x k, stacked if ``batch``) and diag(R) of the QR of a Ginibre matrix."""
    if complex_:
        shape = (n, k) if batch is None else (batch, n, k)
        g = gen.standard_normal((*shape, 2)).view(np.complex128)[..., 0]
        q, r = np.linalg.qr(g)
        return q, np.diagonal(r, axis1=-2, axis2=-1)
    if batch is None:
        # a C-ordered (k, n) draw, transposed, is a Fortran-ordered n x k Gaussian matrix
        return _qr_lapack(gen.standard_normal((k, n)).T)
    q, r = np.linalg.qr(gen.standard_normal((batch, n, k)))
    return q, np.diagonal(r, axis1=-2, axis2=-1)


def haar_columns(n: int, k: int, gen: np.random.Generator, batch: int | None, *,
                  scale: float = 1.0, complex_: bool = False,
                  fix_signs: bool = True) -> np.ndarray:
    """``scale`` times the first k columns of a Haar orthogonal (unitary) n x n matrix.

    Q diag(r_ii / |r_ii|) (Mezzadri 2007); with ``fix_signs=False`` the plain, non-Haar Q.
    The phases and the scale are applied in one in-place pass. Every Haar sampler of this
    module draws through it (the one place a test replaces to break them all).

    Parameters
    ----------
    n, k : int
        Rows, and columns kept (k <= n).
    gen : numpy.random.Generator
    batch : int or None
        Leading batch dimension (None: a single matrix).
    scale : float
    complex_ : bool
        Haar unitary instead of orthogonal.
    fix_signs : bool
        Apply the phase fix that makes Q Haar distributed.

    Returns
    -------
    numpy.ndarray
        Shape (n, k), or (batch, n, k).
    """
    q, r_diag = _ginibre_q(n, k, gen, batch, complex_)
    if fix_signs:
        if complex_:
            modulus = np.abs(r_diag)
            phase = np.where(modulus > 0, r_diag / np.where(modulus > 0, modulus, 1.0), 1.0)
        else:
            phase = np.where(r_diag < 0, -1.0, 1.0)
        q *= (scale * phase)[..., None, :]
    elif scale != 1.0:
        q *= scale
    return q


def haar_orthogonal(n: int, rng: RngLike, *, batch: int | None = None) -> np.ndarray:
    """A Haar-distributed orthogonal matrix O in O(n) (Mezzadri 2007).

    O = Q diag(sign r_ii) where G = QR, G_ij iid N(0, 1).

    Parameters
    ----------
    n : int
        Size, >= 1.
    rng : numpy.random.Generator or int
        Source of randomness.
    batch : int, optional
        If given, return a stack of ``batch`` independent matrices, shape (batch, n, n).

    Returns
    -------
    numpy.ndarray
        Shape (n, n) (Fortran-ordered when unbatched) or (batch, n, n).

    Examples
    --------
    >>> o = haar_orthogonal(4, rng=0)
    >>> bool(np.allclose(o @ o.T, np.eye(4)))
    True
    """
    n = _check_size("n", n)
    return haar_columns(n, n, as_generator(rng), _check_batch(batch))


def plain_qr_orthogonal(n: int, rng: RngLike, *, batch: int | None = None) -> np.ndarray:
    """The Q factor of the QR of a Gaussian matrix, WITHOUT the sign fix: NOT Haar.

    Orthogonal, but Q[0, 0] < 0 and det Q = (-1)^(n-1) with probability one (LAPACK's
    Householder convention). Kept only so that tests can show they reject a wrong sampler;
    same arguments as :func:`haar_orthogonal`.
    """
    n = _check_size("n", n)
    return haar_columns(n, n, as_generator(rng), _check_batch(batch), fix_signs=False)


def haar_unitary(n: int, rng: RngLike, *, batch: int | None = None) -> np.ndarray:
    """A Haar-distributed unitary matrix U in U(n) (Mezzadri 2007).

    U = Q diag(r_ii / |r_ii|) where G = QR, G a complex Ginibre matrix (iid standard complex
    Gaussian entries). Same arguments as :func:`haar_orthogonal`; complex128 result.
    """
    n = _check_size("n", n)
    return haar_columns(n, n, as_generator(rng), _check_batch(batch), complex_=True)


def orthogonal_block(n_out: int, n_in: int, rng: RngLike, *, scale: float = 1.0,
                     batch: int | None = None) -> np.ndarray:
    """``scale`` times the n_out x n_in top-left block of a Haar orthogonal matrix.

    The Haar matrix has size max(n_out, n_in), so the block has orthonormal columns
    (n_out >= n_in: O^T O = I) or orthonormal rows (n_out < n_in: O O^T = I). For
    n_out = n_in this is ``scale * haar_orthogonal(n)`` (the same draws).

    Parameters
    ----------
    n_out, n_in : int
        Block shape, >= 1.
    rng : numpy.random.Generator or int
        Source of randomness.
    scale : float
        Positive factor applied in the same pass as the sign fix.
    batch : int, optional
        Stack size; result shape (batch, n_out, n_in).
    """
    n_out, n_in = _check_size("n_out", n_out), _check_size("n_in", n_in)
    scale, batch = _check_scale("scale", scale), _check_batch(batch)
    gen = as_generator(rng)
    if n_out >= n_in:
        return haar_columns(n_out, n_in, gen, batch, scale=scale)
    return np.swapaxes(haar_columns(n_in, n_out, gen, batch, scale=scale), -1, -2)


def gaussian_matrix(n_out: int, n_in: int, rng: RngLike, *, sigma: float = 1.0,
                    batch: int | None = None) -> np.ndarray:
    """A real Gaussian matrix with iid entries N(0, sigma^2 / n_in), shape (n_out, n_in).

    This is the Gaussian weight law of ``NetworkSpec`` (variance sigma_w^2 / N_in), so that
    E ||W x||^2 / n_out = sigma^2 ||x||^2 / n_in.

    Parameters
    ----------
    n_out, n_in : int
        Shape, >= 1.
    rng : numpy.random.Generator or int
        Source of randomness.
    sigma : float
        Scale, > 0.
    batch : int, optional
        Stack size; result shape (batch, n_out, n_in).
    """
    n_out, n_in = _check_size("n_out", n_out), _check_size("n_in", n_in)
    sigma, batch = _check_scale("sigma", sigma), _check_batch(batch)
    shape = (n_out, n_in) if batch is None else (batch, n_out, n_in)
    g = as_generator(rng).standard_normal(shape)
    g *= sigma / math.sqrt(n_in)
    return g


def sample_weight(ensemble: str, n_out: int, n_in: int, sigma_w: float,
                  rng: RngLike) -> np.ndarray:
    """One weight matrix W^l (n_out x n_in) of a :class:`~freeness_lab.spec.NetworkSpec`.

    ``"gaussian"``: W_ij ~ N(0, sigma_w^2 / n_in) (:func:`gaussian_matrix`).
    ``"orthogonal"``: W = sigma_w sqrt(max(1, n_out / n_in)) O, O the top-left block of a
    Haar orthogonal matrix (:func:`orthogonal_block`); square: W = sigma_w O.
    Both give E ||W x||^2 / n_out = sigma_w^2 ||x||^2 / n_in.
    """
    if ensemble not in WEIGHT_ENSEMBLES:
        raise ValueError(f"ensemble: must be one of {', '.join(WEIGHT_ENSEMBLES)}, "
                         f"got {ensemble!r}")
    n_out, n_in = _check_size("n_out", n_out), _check_size("n_in", n_in)
    sigma_w = _check_scale("sigma_w", sigma_w)
    if ensemble == "gaussian":
        return gaussian_matrix(n_out, n_in, rng, sigma=sigma_w)
    scale = sigma_w * math.sqrt(max(1.0, n_out / n_in))
    return orthogonal_block(n_out, n_in, rng, scale=scale)


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Pin BLAS/LAPACK to one thread inside the block (``threadpoolctl``).

    Use it inside each parallel worker that runs trials (``docs/conventions.md`` section 4: two loky
    workers with two OpenBLAS threads each ran 60x slower than one thread each here).

    Examples
    --------
    >>> with single_blas_thread():
    ...     o = haar_orthogonal(8, rng=1)
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield
