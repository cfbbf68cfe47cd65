"""Seeding helpers: independent children, regenerable from (entropy, spawn_key)."""

import numpy as np
import pytest

from freeness_lab.rng import as_generator, generator_for, spawn_generators


def test_as_generator():
    g = np.random.default_rng(3)
    assert as_generator(g) is g
    assert as_generator(5).random() == np.random.default_rng(5).random()
    with pytest.raises(ValueError, match="rng"):
        as_generator(None)
    with pytest.raises(ValueError, match="rng"):
        as_generator("seed")


def test_children_are_distinct_and_regenerable():
    children = spawn_generators(1234, 4)
    draws = [c.random(3) for c in children]
    assert len({tuple(d) for d in draws}) == 4
    # child k of SeedSequence(1234) has spawn_key (k,)
    for k, d in enumerate(draws):
        np.testing.assert_array_equal(generator_for(1234, (k,)).random(3), d)


def test_spawning_a_generator_leaves_its_stream_alone():
    parent = np.random.default_rng(7)
    spawn_generators(parent, 2)
    assert parent.random() == np.random.default_rng(7).random()


def test_content_seed_is_keyed_by_content_and_matches_the_cells():
    from freeness_lab.harness.cells import Cell
    from freeness_lab.rng import content_seed, content_words
    from freeness_lab.spec import NetworkSpec

    spec = NetworkSpec("relu", "orthogonal", depth=2, width=8)
    cell = Cell("spectrum", spec, 3, (), 5)
    child = content_seed(5, cell.identity(), 2)
    assert child.spawn_key == cell.spawn_key(2) == (*content_words(cell.identity()), 2)
    assert np.array_equal(child.generate_state(4), cell.seed_sequence(2).generate_state(4))
    other = content_seed(5, {**cell.identity(), "study": "freeness"}, 2)
    assert other.spawn_key != child.spawn_key
