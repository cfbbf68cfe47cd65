"""The one exception by which the theory side says "not covered", on purpose.

The harness reports a prediction as *unavailable* only when the theory raises
:class:`TheoryUnavailable`; any other exception from the theory side is a failure of the
check that asked for it (a verifier must not turn a bug into "no theory").
"""

from __future__ import annotations

__all__ = ["TheoryUnavailable"]


class TheoryUnavailable(NotImplementedError):
    """The theory side deliberately does not cover this network or this quantity.

    Raised, with the reason, where a prediction is known to be missing (e.g. H_L of a
    rectangular network, the density of a single smooth D^2 factor); a subclass of
    ``NotImplementedError`` so that callers catching that keep working.
    """
