"""Statistics used across analyses (thin wrappers over statsmodels / scipy)."""
from __future__ import annotations

import numpy as np


def wilson(correct: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (clamped so that it holds the point estimate exactly:
    statsmodels returns 0.9999999999999999 for 336/336)."""
    from statsmodels.stats.proportion import proportion_confint   # 1 s of import: only where a CI is made
    if n == 0:
        return float("nan"), float("nan")
    lo, hi = proportion_confint(int(correct), int(n), alpha=alpha, method="wilson")
    p = correct / n
    return float(min(lo, p)), float(max(hi, p))


def accuracy_summary(correct: np.ndarray) -> dict:
    correct = np.asarray(correct, dtype=bool)
    lo, hi = wilson(int(correct.sum()), len(correct))
    return dict(n=len(correct), correct=int(correct.sum()), accuracy=float(correct.mean()) if len(correct) else
                float("nan"), ci_low=lo, ci_high=hi)


def bootstrap_ci(values, statistic=np.mean, seed: int = 0, n_resamples: int = 2000, alpha: float = 0.05,
                 axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI over items (axis 0) with scipy; returns (low, high) arrays."""
    from scipy.stats import bootstrap
    values = np.asarray(values, dtype=float)
    if values.shape[axis] < 2:
        nan = np.full(np.delete(values.shape, axis), np.nan)
        return nan, nan
    res = bootstrap((values,), statistic, n_resamples=n_resamples, confidence_level=1 - alpha, axis=axis,
                    method="percentile", random_state=np.random.default_rng(seed), vectorized=True)
    return res.confidence_interval.low, res.confidence_interval.high


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (family-wise error across a sweep), NaN where the p-value is NaN. The same
    operations as statsmodels' `multipletests(method="holm")`, so the same bits, without its `gc.collect()` per
    call (seconds per sweep)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        order = np.argsort(p[ok])
        ranked = np.maximum.accumulate(p[ok][order] * np.arange(len(order), 0, -1))
        ranked[ranked > 1] = 1
        adjusted = np.empty_like(ranked)
        adjusted[order] = ranked
        out[ok] = adjusted
    return out


def mcnemar_exact(before, after) -> float:
    """Exact McNemar p-value for paired binary outcomes (e.g. correct before vs after an intervention)."""
    from statsmodels.stats.contingency_tables import mcnemar
    before, after = np.asarray(before, bool), np.asarray(after, bool)
    table = [[int((before & after).sum()), int((before & ~after).sum())],
             [int((~before & after).sum()), int((~before & ~after).sum())]]
    return float(mcnemar(table, exact=True).pvalue)
