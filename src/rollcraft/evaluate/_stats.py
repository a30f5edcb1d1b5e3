"""The statistics of ``evaluate``: pass@k, the paired bootstrap and sign-flip test, McNemar, Holm.

Pure Python and seeded (each function that draws takes its ``random.Random``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from itertools import product

__all__ = [
    "bootstrap_ci",
    "holm_bonferroni",
    "mcnemar_exact",
    "pass_at_k",
    "permutation_p_value",
]

_EXACT_LIMIT = 16


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` of ``n`` samples (``c`` correct) is correct.

    >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 4), pass_at_k(5, 0, 2)
    (0.25, 1.0, 0.0)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (``q`` in [0, 1]) of already sorted values."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def bootstrap_ci(differences: Sequence[float], *, samples: int, rng: random.Random) -> tuple[float, float]:
    """Percentile 95% interval of the mean of ``differences`` under resampling with replacement.

    >>> bootstrap_ci([1.0, 1.0, 1.0], samples=100, rng=random.Random(0))
    (1.0, 1.0)
    """
    n = len(differences)
    if n == 0:
        return (0.0, 0.0)
    means = sorted(math.fsum(rng.choices(differences, k=n)) / n for _ in range(samples))
    return (_percentile(means, 0.025), _percentile(means, 0.975))


def permutation_p_value(differences: Sequence[float], *, permutations: int, rng: random.Random) -> float:
    """Two-sided p-value of a paired sign-flip test that the mean difference is zero.

    Zero differences are left out (they are the same under any flip). Exact when at most 16
    differences remain, else Monte Carlo with ``permutations`` draws and the +1 correction.

    >>> permutation_p_value([0.0, 0.0], permutations=100, rng=random.Random(0))
    1.0
    """
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        return 1.0
    observed = abs(math.fsum(nonzero)) - 1e-12
    if len(nonzero) <= _EXACT_LIMIT:
        flips = list(product((1.0, -1.0), repeat=len(nonzero)))
        hits = sum(
            1
            for signs in flips
            if abs(math.fsum(s * d for s, d in zip(signs, nonzero, strict=True))) >= observed
        )
        return hits / len(flips)
    total = math.fsum(nonzero)
    hits = 0
    for _ in range(permutations):
        bits = rng.getrandbits(len(nonzero))
        kept = math.fsum(d for i, d in enumerate(nonzero) if bits >> i & 1)
        hits += abs(2 * kept - total) >= observed
    return (hits + 1) / (permutations + 1)


def mcnemar_exact(fail_to_pass: int, pass_to_fail: int) -> float:
    """McNemar's exact test: the two-sided binomial p-value of the discordant pairs.

    Under no change each of the ``n = b + c`` discordant tasks flips either way with
    probability 1/2, so ``p = min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(n, 1/2)``,
    computed from integers (exact up to the final division). No discordant task gives 1.

    >>> mcnemar_exact(1, 6), mcnemar_exact(0, 5), mcnemar_exact(3, 3), mcnemar_exact(0, 0)
    (0.125, 0.0625, 1.0, 1.0)
    """
    if fail_to_pass < 0 or pass_to_fail < 0:
        raise ValueError(f"counts must be >= 0, got {fail_to_pass} and {pass_to_fail}")
    n = fail_to_pass + pass_to_fail
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(fail_to_pass, pass_to_fail) + 1))
    return min(1.0, 2 * tail / (1 << n))


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``m`` p-values, in the order given.

    The i-th smallest p (i from 0) is multiplied by ``m - i``, capped at 1, and made no
    smaller than the adjusted p before it; rejecting where the adjusted p < alpha controls
    the family-wise error rate at alpha.

    >>> holm_bonferroni([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (p_values[i], i))
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
