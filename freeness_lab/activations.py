"""Registry of activation functions phi with their derivatives phi'.

Every activation is vectorized over numpy arrays. Piecewise-linear activations
(linear, ReLU, leaky ReLU, hard tanh) also carry their ``pieces``: the intervals on
which phi' is constant, so that the law of phi'(h)^2 with h ~ N(0, q) has exact atoms
(see :mod:`freeness_lab.theory.meanfield`). Smooth activations carry the derivatives of phi' in
closed form (``dphi_jet``) and may carry phi' continued to complex arguments
(``complex_dphi``), which the contour rule of the law of phi'(h)^2 uses
(:mod:`freeness_lab.theory.laws.smooth_d2`): an activation is added here, in one place.

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
    complex_dphi : callable or None
        phi' continued analytically to complex h, where ``dphi`` accepts real input only
        or loses accuracy off the axis; ``None`` when ``dphi`` itself serves (the contour
        rule of the law of phi'(h)^2, :mod:`freeness_lab.theory.laws.smooth_d2`, evaluates
        it in the complex h-plane).
    dphi_jet : callable or None
        (phi', phi'', phi''', phi'''') at real x, stacked on a first axis of length 4, in
        closed form and without cancellation in the tails (the contour rule of the law of
        phi'(h)^2 deforms its path by the derivatives of g = phi'^2). ``None`` for
        piecewise-linear activations.
    """

    name: str
    phi: ArrayFn
    dphi: ArrayFn
    pieces: tuple[tuple[float, float, float], ...] | None = None
    complex_dphi: ArrayFn | None = None
    dphi_jet: ArrayFn | None = None

    @property
    def is_piecewise_linear(self) -> bool:
        """True when phi' takes finitely many values (atoms in the law of D^2)."""
        return self.pieces is not None

    @property
    def analytic_dphi(self) -> ArrayFn:
        """phi' for complex h: :attr:`complex_dphi` when set, else :attr:`dphi`."""
        return self.dphi if self.complex_dphi is None else self.complex_dphi

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.phi(x)


def expit(h: np.ndarray) -> np.ndarray:
    """The logistic function continued to complex h: 1 / (1 + e^-h), as e^h / (1 + e^h)
    for Re h < 0 ((1 + tanh(h / 2)) / 2 cancels to rounding noise below Re h ~ -30, which
    the D^2 law of SiLU reaches once q ~ 100: deep networks with sigma_w > 1)."""
    h = np.asarray(h)
    e = np.exp(-np.abs(h.real) - 1j * np.sign(h.real) * h.imag)  # e^-h or e^h, |e| <= 1
    return np.where(h.real >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


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


def _sech2(x: np.ndarray) -> np.ndarray:
    """sech(x)^2 = 4 e^-2|x| / (1 + e^-2|x|)^2, without overflow."""
    e = np.exp(-2.0 * np.abs(x))
    return 4.0 * e / (1.0 + e) ** 2


def _tanh_jet(x: np.ndarray) -> np.ndarray:
    """p = sech^2 x, t = tanh x: p' = -2 p t, p'' = 4 p t^2 - 2 p^2,
    p''' = -8 p t^3 + 16 p^2 t."""
    p, t = _sech2(x), np.tanh(x)
    return np.stack([p, -2.0 * p * t, 4.0 * p * t * t - 2.0 * p * p,
                     -8.0 * p * t**3 + 16.0 * p * p * t])


def _erf_jet(x: np.ndarray) -> np.ndarray:
    """p = 2 / sqrt(pi) e^-x^2: p' = -2 x p, p'' = (4 x^2 - 2) p, p''' = (12 x - 8 x^3) p."""
    p = (2.0 / math.sqrt(math.pi)) * np.exp(-np.square(x))
    return np.stack([p, -2.0 * x * p, (4.0 * x * x - 2.0) * p, (12.0 * x - 8.0 * x**3) * p])


def _logistic_jet(x: np.ndarray) -> np.ndarray:
    """sigma' .. sigma'''' of the logistic sigma: v = sigma' = sech^2(x / 2) / 4 and
    a = 1 - 2 sigma = -tanh(x / 2) give v' = v a, v'' = v a^2 - 2 v^2,
    v''' = v a^3 - 8 v^2 a."""
    v, a = 0.25 * _sech2(0.5 * x), -np.tanh(0.5 * x)
    return np.stack([v, v * a, v * a * a - 2.0 * v * v, v * a**3 - 8.0 * v * v * a])


def _silu_jet(x: np.ndarray) -> np.ndarray:
    """phi = x sigma: phi^(n) = n sigma^(n-1) + x sigma^(n), from the logistic's jet."""
    v = _logistic_jet(x)
    return np.stack([special.expit(x) + x * v[0], 2.0 * v[0] + x * v[1],
                     3.0 * v[1] + x * v[2], 4.0 * v[2] + x * v[3]])


def _gelu_jet(x: np.ndarray) -> np.ndarray:
    """phi' = Phi(x) + x p(x), p the normal density: phi'' = (2 - x^2) p,
    phi''' = (x^3 - 4 x) p, phi'''' = (7 x^2 - x^4 - 4) p."""
    p = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    x2 = x * x
    return np.stack([special.ndtr(x) + x * p, (2.0 - x2) * p, (x2 - 4.0) * x * p,
                     (7.0 * x2 - x2 * x2 - 4.0) * p])


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
    # complex phi': 1 - tanh^2 cancels to 0 for |h| > 19
    "tanh": Activation("tanh", np.tanh, lambda x: 1.0 - np.tanh(x) ** 2,
                       complex_dphi=lambda h: 1.0 / np.cosh(h) ** 2, dphi_jet=_tanh_jet),
    "erf": Activation("erf", special.erf,
                      lambda x: (2.0 / math.sqrt(math.pi)) * np.exp(-np.square(x)),
                      dphi_jet=_erf_jet),
    "sigmoid": Activation("sigmoid", _sigmoid, _dsigmoid,
                          complex_dphi=lambda h: 0.25 / np.cosh(0.5 * h) ** 2,
                          dphi_jet=_logistic_jet),
    "silu": Activation("silu", _silu, _dsilu,
                       complex_dphi=lambda h: expit(h) * (1.0 + h * expit(-h)),
                       dphi_jet=_silu_jet),
    "gelu": Activation("gelu", _gelu, _dgelu, dphi_jet=_gelu_jet),
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
