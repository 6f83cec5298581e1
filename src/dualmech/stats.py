"""Statistics used across analyses (thin wrappers over statsmodels / scipy)."""
from __future__ import annotations

import numpy as np
from statsmodels.stats.proportion import proportion_confint


def wilson(correct: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n == 0:
        return float("nan"), float("nan")
    lo, hi = proportion_confint(int(correct), int(n), alpha=alpha, method="wilson")
    return float(lo), float(hi)


def accuracy_summary(correct: np.ndarray) -> dict:
    correct = np.asarray(correct, dtype=bool)
    lo, hi = wilson(int(correct.sum()), len(correct))
    return dict(n=len(correct), correct=int(correct.sum()), accuracy=float(correct.mean()) if len(correct) else
                float("nan"), ci_low=lo, ci_high=hi)
