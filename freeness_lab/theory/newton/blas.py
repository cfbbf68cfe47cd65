"""BLAS pinned to one thread around the solver's small matrix products (:func:`one_blas_thread`).

The Newton steps (a few series' partial sums over a few hundred points, every layer's rules
stacked) and the rational fits (AAA's small SVDs, the Laurent moments of a rule) multiply
small matrices; a second BLAS thread only synchronizes. On 2 shared cores it made the series
sums of the levels about 0 (:mod:`~freeness_lab.theory.newton.zero_levels`) 13x slower (their
evaluation 2.1x; those are half of a tanh law's support search), and a 56 x 9000 complex
matrix-vector product 10-40x slower (docs/conventions.md, Numerics: BLAS threads).
"""

from __future__ import annotations

import functools

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]


@functools.cache
def _controller() -> ThreadpoolController:
    """The BLAS libraries loaded (inspected once: entering a limit then costs ~10 us, where
    ``threadpool_limits`` inspects them again, ~1 ms; the theory package has imported numpy's
    and scipy's by the first solve)."""
    return ThreadpoolController()


def one_blas_thread():
    """A context manager: BLAS limited to one thread inside it, restored on leaving."""
    return _controller().limit(limits=1, user_api="blas")
