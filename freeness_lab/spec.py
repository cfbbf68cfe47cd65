"""The network specification shared by the simulation and the theory sides.

A :class:`NetworkSpec` describes a random multilayer perceptron

    h^l = W^l x^{l-1} + b^l,   x^l = phi(h^l),   l = 1..L,

with widths N_0..N_L, biases b^l_i ~ N(0, sigma_b^2), an input with ||x^0||^2 / N_0 = q0,
and weights either Gaussian (W_ij ~ N(0, sigma_w^2 / N_{l-1})) or scaled Haar orthogonal
(W = sigma_w O). ``freeness_lab.simulate`` samples it; ``freeness_lab.theory`` predicts its
limit laws. Conventions: ``docs/conventions.md`` section 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real

from freeness_lab.activations import ACTIVATION_NAMES, Activation, get_activation

#: weight ensembles a network may be drawn from
WEIGHT_ENSEMBLES: tuple[str, ...] = ("orthogonal", "gaussian")


class SpecError(ValueError):
    """A field of a specification or configuration has a value outside its allowed set.

    Attributes
    ----------
    field : str
        The offending field's name, e.g. ``"depth"``.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def _check_real(name: str, value: object, *, low: float, strict: bool) -> float:
    bound = f"> {low:g}" if strict else f">= {low:g}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise SpecError(name, f"must be a real number {bound}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (v <= low if strict else v < low):
        raise SpecError(name, f"must be a finite number {bound}, got {value!r}")
    return v


def _check_int(name: str, value: object, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < low:
        raise SpecError(name, f"must be an integer >= {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class NetworkSpec:
    """A random MLP: activation, weight ensemble, depth, widths and variances.

    Parameters
    ----------
    activation : str
        A name accepted by :func:`freeness_lab.activations.get_activation`.
    weights : {"orthogonal", "gaussian"}
        Haar orthogonal W = sigma_w O, or Gaussian W_ij ~ N(0, sigma_w^2 / N_in).
    depth : int
        Number of layers L >= 1.
    width : int
        Width M of every layer (square network), ignored when ``widths`` is given.
    sigma_w : float
        Weight scale, > 0.
    sigma_b : float
        Bias standard deviation, >= 0.
    q0 : float
        Input second moment ||x^0||^2 / N_0, > 0.
    widths : tuple of int, optional
        Per-layer widths (N_0, ..., N_L) for a rectangular network; length depth + 1.
        Rectangular orthogonal weights are W = sigma_w sqrt(max(1, N_out / N_in)) O, O the
        N_out x N_in top-left block of a Haar orthogonal matrix of size max(N_out, N_in), so
        that E||W x||^2 / N_out = sigma_w^2 ||x||^2 / N_in in both ensembles.

    Raises
    ------
    SpecError
        (a ``ValueError``) naming the first invalid field and its allowed values.

    Examples
    --------
    >>> spec = NetworkSpec("relu", "orthogonal", depth=3, width=500, sigma_w=2 ** 0.5)
    >>> spec.layer_widths
    (500, 500, 500, 500)
    """

    activation: str
    weights: str
    depth: int
    width: int = 0
    sigma_w: float = 1.0
    sigma_b: float = 0.0
    q0: float = 1.0
    widths: tuple[int, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        try:
            act = get_activation(self.activation)
        except ValueError:
            raise SpecError("activation", f"unknown activation {self.activation!r}; "
                            f"allowed: {', '.join(ACTIVATION_NAMES)}") from None
        object.__setattr__(self, "activation", act.name)
        if self.weights not in WEIGHT_ENSEMBLES:
            raise SpecError("weights", f"must be one of {', '.join(WEIGHT_ENSEMBLES)}, "
                            f"got {self.weights!r}")
        object.__setattr__(self, "depth", _check_int("depth", self.depth, low=1))
        if self.widths is None:
            object.__setattr__(self, "width", _check_int("width", self.width, low=1))
        else:
            if isinstance(self.widths, str | bytes) or not hasattr(self.widths, "__len__"):
                raise SpecError("widths", f"must be a sequence of depth + 1 = {self.depth + 1} "
                                f"integers >= 1, got {self.widths!r}")
            if len(self.widths) != self.depth + 1:
                raise SpecError("widths", f"must have depth + 1 = {self.depth + 1} entries "
                                f"(N_0..N_L), got {len(self.widths)}")
            ws = tuple(_check_int(f"widths[{i}]", w, low=1) for i, w in enumerate(self.widths))
            object.__setattr__(self, "widths", ws)
            object.__setattr__(self, "width", ws[-1])
        object.__setattr__(self, "sigma_w", _check_real("sigma_w", self.sigma_w, low=0.0,
                                                        strict=True))
        object.__setattr__(self, "sigma_b", _check_real("sigma_b", self.sigma_b, low=0.0,
                                                        strict=False))
        object.__setattr__(self, "q0", _check_real("q0", self.q0, low=0.0, strict=True))

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """Widths (N_0, ..., N_L)."""
        if self.widths is not None:
            return self.widths
        return (self.width,) * (self.depth + 1)

    @property
    def is_square(self) -> bool:
        """True when every layer has the same width."""
        return len(set(self.layer_widths)) == 1

    @property
    def act(self) -> Activation:
        """The :class:`~freeness_lab.activations.Activation` object."""
        return get_activation(self.activation)

    def with_width(self, width: int) -> NetworkSpec:
        """The same square network at another width M."""
        from dataclasses import replace

        return replace(self, width=width, widths=None)
