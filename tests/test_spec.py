"""NetworkSpec validation: every bad field gives one clear message naming it."""

import pytest

from freeness_lab import NetworkSpec, SpecError

GOOD = dict(activation="relu", weights="orthogonal", depth=3, width=16, sigma_w=1.4,
            sigma_b=0.1, q0=1.0)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("activation", "relu6", "allowed: linear, relu"),
        ("weights", "haar", "orthogonal, gaussian"),
        ("depth", 0, ">= 1"),
        ("depth", 2.5, "integer"),
        ("depth", True, "integer"),
        ("width", 0, ">= 1"),
        ("width", -5, ">= 1"),
        ("sigma_w", 0.0, "> 0"),
        ("sigma_w", float("nan"), "> 0"),
        ("sigma_b", -0.1, ">= 0"),
        ("q0", 0.0, "> 0"),
        ("q0", "1", "real number"),
    ],
)
def test_bad_field_names_the_field(field, value, expected):
    with pytest.raises(SpecError) as info:
        NetworkSpec(**{**GOOD, field: value})
    assert info.value.field == field
    message = str(info.value)
    assert message.startswith(f"{field}: ")
    assert expected in message
    assert "\n" not in message


def test_widths():
    spec = NetworkSpec(**{**GOOD, "widths": (8, 16, 12, 4)})
    assert spec.layer_widths == (8, 16, 12, 4)
    assert not spec.is_square
    with pytest.raises(SpecError, match="widths: must have depth \\+ 1 = 4"):
        NetworkSpec(**{**GOOD, "widths": (8, 16)})
    with pytest.raises(SpecError) as info:
        NetworkSpec(**{**GOOD, "widths": (8, 0, 12, 4)})
    assert info.value.field == "widths[1]"


def test_square_and_canonical_names():
    spec = NetworkSpec(**{**GOOD, "activation": "Swish"})
    assert spec.activation == "silu"
    assert spec.layer_widths == (16,) * 4
    assert spec.with_width(32).layer_widths == (32,) * 4
    assert spec.act.name == "silu"
