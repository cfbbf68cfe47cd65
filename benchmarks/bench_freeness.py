"""Throughput of the freeness study's two sides.

Simulation side: the default word set (:func:`freeness_lab.harness.freeness.default_words`)
evaluated on one sampled network at M = 2048, depth 4, against the floor of the matrix
products those words need, timed as bare numpy matmuls of the same size in the same run:
sum over words of :func:`freeness_lab.simulate.words.matmul_count` plus 2 (l_max - 1) products
for the FIM duals H_l up to the deepest one used (the incremental recursion).

Prediction side: non-crossing partitions for words of length 10 (cold caches): NC(10)
enumeration and free predictions of alternating words in 2 and 3 free variables.

Run: ``python benchmarks/bench_freeness.py [--width 2048] [--depth 4] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import freeness_lab.theory.free_cumulants as fc
from freeness_lab import NetworkSpec
from freeness_lab.harness.freeness import default_words, trial_values
from freeness_lab.simulate.network import sample_network
from freeness_lab.simulate.words import WordEvaluator, matmul_count, parse_word


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def simulation_side(width: int, depth: int, repeats: int) -> None:
    spec = NetworkSpec("tanh", "orthogonal", depth=depth, width=width, sigma_w=1.2,
                       sigma_b=0.1)
    net = sample_network(spec, rng=0)
    words = [sw.word for sw in default_words(depth)]
    h_layers = [x.layer for w in words for x in parse_word(w) if x.name == "H"]
    floor_products = sum(matmul_count(w) for w in words) + 2 * (max(h_layers, default=1) - 1)

    def evaluate() -> None:
        ev = WordEvaluator(net)
        for w in words:
            ev(w)

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((width, width)), rng.standard_normal((width, width))

    def floor() -> None:
        for _ in range(floor_products):
            a @ b

    t_words, t_floor = _best(evaluate, repeats), _best(floor, repeats)
    per_word = [(w, _best(lambda w=w: WordEvaluator(net)(w), 1)) for w in words]
    print(f"simulation side: M = {width}, depth {depth}, {len(words)} default words")
    print(f"{'what':<44}{'seconds':>10}{'words/s':>10}{'ratio':>8}")
    print(f"{'floor: ' + str(floor_products) + ' bare matmuls':<44}{t_floor:>10.3f}"
          f"{len(words) / t_floor:>10.2f}{1.0:>8.2f}")
    print(f"{'default words (fresh evaluator, H_l formed)':<44}{t_words:>10.3f}"
          f"{len(words) / t_words:>10.2f}{t_words / t_floor:>8.2f}")
    t_trial = _best(lambda: trial_values(spec, default_words(depth), 0), 1)
    print(f"{'one trial incl. sampling + paired prediction':<44}{t_trial:>10.3f}"
          f"{len(words) / t_trial:>10.2f}{t_trial / t_floor:>8.2f}")
    print("per word (own evaluator: H_l formed anew), seconds:")
    for w, t in per_word:
        print(f"  {w:<40}{t:>8.3f}  ({matmul_count(w)} products)")


def prediction_side() -> None:
    def cold(fn):
        fc.clear_caches()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    rng = np.random.default_rng(2)
    moments = {c: list(rng.uniform(0.5, 2.0, size=10)) for c in "abc"}
    rows = [
        ("NC(10) enumeration (16796 partitions)", cold(lambda: fc.noncrossing_partitions(10))),
        ("free_mixed_moment('ababababab')",
         cold(lambda: fc.free_mixed_moment("ababababab", moments))),
        ("free_mixed_moment('abcabcabca')",
         cold(lambda: fc.free_mixed_moment("abcabcabca", moments))),
        ("moments_to_free_cumulants(m_1..m_10)",
         cold(lambda: fc.moments_to_free_cumulants(moments["a"]))),
    ]
    print("\nprediction side (cold caches; target: under 1 s each)")
    print(f"{'what':<44}{'seconds':>10}{'< 1 s':>8}")
    for what, t in rows:
        print(f"{what:<44}{t:>10.3f}{'yes' if t < 1 else 'NO':>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    simulation_side(args.width, args.depth, args.repeats)
    prediction_side()


if __name__ == "__main__":
    main()
