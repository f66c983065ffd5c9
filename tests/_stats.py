"""Monte Carlo test statistics shared by the statistical tests."""

from __future__ import annotations

import numpy as np
import scipy.stats


def z_mean(draws: np.ndarray, expected_mean, expected_sd) -> np.ndarray:
    """z-scores of the sample mean of iid draws (axis 0) against a known mean and sd."""
    n = draws.shape[0]
    return (draws.mean(axis=0) - expected_mean) / (np.asarray(expected_sd) / np.sqrt(n))


def z_variance_normal(draws: np.ndarray, expected_var) -> np.ndarray:
    """z-scores of the sample variance of iid normal draws: Var(s^2) = 2 sigma^4 / (n - 1)."""
    n = draws.shape[0]
    expected_var = np.asarray(expected_var)
    return (draws.var(axis=0, ddof=1) - expected_var) / (expected_var * np.sqrt(2.0 / (n - 1)))


def z_uniform(pit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-scores of mean and variance of probability-integral-transform values that should be U(0, 1).

    Mean 1/2 with sd sqrt(1/12 / n); variance 1/12 with sd sqrt((1/80 - 1/144) / n).
    """
    n = pit.shape[0]
    z_m = (pit.mean(axis=0) - 0.5) / np.sqrt(1 / 12 / n)
    z_v = (pit.var(axis=0) - 1 / 12) / np.sqrt((1 / 80 - 1 / 144) / n)
    return z_m, z_v


def gamma_pit(x, shape, rate) -> np.ndarray:
    return scipy.stats.gamma.cdf(x, a=shape, scale=1.0 / np.asarray(rate))


def inverse_gamma_pit(x, shape, scale) -> np.ndarray:
    return scipy.stats.invgamma.cdf(x, a=shape, scale=scale)


def batch_means_se(chain: np.ndarray, n_batches: int = 50) -> np.ndarray:
    """Standard error of the mean of an autocorrelated chain (axis 0) by batch means."""
    n = (chain.shape[0] // n_batches) * n_batches
    batches = chain[:n].reshape(n_batches, n // n_batches, *chain.shape[1:]).mean(axis=1)
    return batches.std(axis=0, ddof=1) / np.sqrt(n_batches)


def ordered_delta_checks(prior, delta_in, delta_out, local_prec, coef, tau):
    """PIT of each delta_h given the deltas drawn before it and the input deltas after it."""
    k, p = coef.shape[-2:]
    shape0 = np.full(k, prior.delta_2_shape)
    shape0[0] = prior.delta_1_shape
    rate0 = np.full(k, prior.delta_2_rate)
    rate0[0] = prior.delta_1_rate
    for h in range(k):
        current = np.concatenate([delta_out[:, :h], np.broadcast_to(delta_in[h:], (delta_out.shape[0], k - h))], 1)
        others = np.cumprod(current, axis=1) / current[:, [h]]
        row_ss = np.sum(local_prec * coef**2 * tau, axis=-1)
        ss = np.sum(others[:, h:] * row_ss[:, h:], axis=1)
        z_m, z_v = z_uniform(gamma_pit(delta_out[:, h], shape0[h] + 0.5 * p * (k - h), rate0[h] + 0.5 * ss))
        assert abs(z_m) < Z_BOUND and abs(z_v) < Z_BOUND, (h, z_m, z_v)


# Every z-test in the suite uses this bound: with ~100 independent checks per module the chance
# of a false failure is below 1 % (two-sided normal tail 2 * 1.7e-5 per check at 4.3).
Z_BOUND = 4.3
