"""Registry of activation functions phi with their derivatives phi'.

Every activation is vectorized over numpy arrays. Piecewise-linear activations
(linear, ReLU, leaky ReLU, hard tanh) also carry their ``pieces``: the intervals on
which phi' is constant, so that the law of phi'(h)^2 with h ~ N(0, q) has exact atoms
(see :mod:`freeness_lab.theory.meanfield`).

Names
-----
``linear``, ``relu``, ``leaky_relu`` (slope 0.01 by default, ``leaky_relu(0.2)`` sets it),
``hard_tanh``, ``tanh``, ``erf``, ``sigmoid``, ``silu`` (alias ``swish``), ``gelu``
(exact form x Phi(x)).

Examples
--------
>>> act = get_activation("relu")
>>> act.phi(np.array([-1.0, 2.0])), act.dphi(np.array([-1.0, 2.0]))
(array([0., 2.]), array([0., 1.]))
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

ArrayFn = Callable[[np.ndarray], np.ndarray]

#: default negative-side slope of ``leaky_relu`` (PyTorch's default)
LEAKY_RELU_DEFAULT_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """An activation function phi and its derivative.

    Attributes
    ----------
    name : str
        Canonical name, e.g. ``"relu"`` or ``"leaky_relu(0.2)"``.
    phi, dphi : callable
        Vectorized phi and phi'.
    pieces : tuple of (left, right, slope) or None
        For piecewise-linear phi: phi'(x) = slope on (left, right); the intervals cover
        the real line. ``None`` for smooth activations, whose phi'(h)^2 has a continuous law.
    """

    name: str
    phi: ArrayFn
    dphi: ArrayFn
    pieces: tuple[tuple[float, float, float], ...] | None = None

    @property
    def is_piecewise_linear(self) -> bool:
        """True when phi' takes finitely many values (atoms in the law of D^2)."""
        return self.pieces is not None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.phi(x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return special.expit(x)


def _dsigmoid(x: np.ndarray) -> np.ndarray:
    s = special.expit(x)
    return s * (1.0 - s)


def _silu(x: np.ndarray) -> np.ndarray:
    return x * special.expit(x)


def _dsilu(x: np.ndarray) -> np.ndarray:
    s = special.expit(x)
    return s * (1.0 + x * (1.0 - s))


def _gelu(x: np.ndarray) -> np.ndarray:
    return x * special.ndtr(x)


def _dgelu(x: np.ndarray) -> np.ndarray:
    return special.ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _leaky_relu(slope: float) -> Activation:
    short = f"{slope:g}"
    return Activation(
        # the slope exactly: ``:g`` where it round-trips, else the shortest repr
        name=f"leaky_relu({short if float(short) == slope else repr(slope)})",
        phi=lambda x: np.where(x > 0, x, slope * x),
        dphi=lambda x: np.where(x > 0, 1.0, slope),
        pieces=((-math.inf, 0.0, slope), (0.0, math.inf, 1.0)),
    )


_INF = math.inf
_REGISTRY: dict[str, Activation] = {
    "linear": Activation("linear", lambda x: np.asarray(x, float) * 1.0,
                         lambda x: np.ones_like(x, dtype=float), ((-_INF, _INF, 1.0),)),
    "relu": Activation("relu", lambda x: np.maximum(x, 0.0),
                       lambda x: (np.asarray(x) > 0).astype(float),
                       ((-_INF, 0.0, 0.0), (0.0, _INF, 1.0))),
    "hard_tanh": Activation("hard_tanh", lambda x: np.clip(x, -1.0, 1.0),
                            lambda x: (np.abs(x) < 1.0).astype(float),
                            ((-_INF, -1.0, 0.0), (-1.0, 1.0, 1.0), (1.0, _INF, 0.0))),
    "tanh": Activation("tanh", np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "erf": Activation("erf", special.erf,
                      lambda x: (2.0 / math.sqrt(math.pi)) * np.exp(-np.square(x))),
    "sigmoid": Activation("sigmoid", _sigmoid, _dsigmoid),
    "silu": Activation("silu", _silu, _dsilu),
    "gelu": Activation("gelu", _gelu, _dgelu),
}
_ALIASES = {"swish": "silu", "hardtanh": "hard_tanh", "identity": "linear"}
_LEAKY = re.compile(r"^leaky_relu(?:\((?P<slope>[^)]*)\))?$")

#: names accepted by :func:`get_activation`
ACTIVATION_NAMES: tuple[str, ...] = (*_REGISTRY, "leaky_relu", *_ALIASES)


def get_activation(name: str | Activation) -> Activation:
    """Look up an activation by name.

    Parameters
    ----------
    name : str or Activation
        A registered name (see module docstring), ``"leaky_relu(s)"`` for a leaky ReLU of
        negative slope ``s``, or an :class:`Activation` (returned unchanged).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str):
        raise ValueError(f"activation must be a string, got {name!r}; "
                         f"valid names: {', '.join(ACTIVATION_NAMES)}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in _REGISTRY:
        return _REGISTRY[key]
    match = _LEAKY.match(key)
    if match:
        raw = match.group("slope")
        try:
            slope = LEAKY_RELU_DEFAULT_SLOPE if raw is None else float(raw)
        except ValueError:
            slope = math.nan
        if not math.isfinite(slope):
            raise ValueError(f"activation {name!r}: leaky_relu slope must be a finite number, "
                             f"e.g. 'leaky_relu(0.2)'")
        return _leaky_relu(slope)
    raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(ACTIVATION_NAMES)}")
