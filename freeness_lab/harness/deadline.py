"""A wall-clock limit on a block of Python code (SIGALRM), for work whose cost a run cannot
bound in advance, such as the theory densities drawn under the histograms.

The Newton solver is a Python loop over vectorised steps, so the alarm interrupts it within
one step. Where there is no SIGALRM (not POSIX) or the block does not run in the main thread
(signals are delivered there only), the block runs without a limit.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["TimeLimitExceeded", "time_limit"]


class TimeLimitExceeded(BaseException):
    """The block of :func:`time_limit` ran past its limit.

    A ``BaseException``, like ``KeyboardInterrupt``: code that catches ``Exception`` to
    classify failures (e.g. :mod:`freeness_lab.harness.theory_side`) must not swallow it.
    """


def _enforceable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float) -> Iterator[bool]:
    """Raise :class:`TimeLimitExceeded` inside the block once ``seconds`` have passed.

    Yields whether the limit is enforced (see the module docstring). The previous SIGALRM
    handler and timer are restored on exit.
    """
    if not _enforceable() or not seconds > 0:
        yield False
        return

    def _alarm(signum: int, frame: object) -> None:
        raise TimeLimitExceeded(f"ran past its limit of {seconds:.3g} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)
