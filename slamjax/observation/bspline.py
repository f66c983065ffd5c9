"""Time series (growth curves, function-valued traits) through a B-spline random regression: the
latent traits of individual i are the p coefficients eta_i of one B-spline basis B(t) over the
observed time range, and its observations at its own times t_i1, ..., t_in_i are

    y_it = B(t_it) eta_i + e_it,   e_it ~ N(0, sigma2),   sigma2 ~ InvGamma(a, b),

with one residual variance shared by all observations and b = ``variance_scale`` x the variance of
all observed values. Individuals have their own number and times of observations (a tall table);
the model below the link describes the coefficients (their genetic covariance G is the
coefficient-level covariance; ``slamjax.curves`` maps it to the time scale, B G B').

With B_i (n_i x p) the basis at individual i's times, step 9 draws, for every individual
independently,

    eta_i | y_i, sigma2, rest ~ N(C_i^-1 (B_i' y_i / sigma2 + diag(1 / v) mean_i), C_i^-1),
        C_i = B_i' B_i / sigma2 + diag(1 / v)                 (v the coefficients' residual variances),

then, with N the number of observations,

    sigma2 | y, Eta ~ InvGamma(a + N / 2, b + sum_{i, t} (y_it - B(t_it) eta_i)^2 / 2).

The observations of all individuals are held padded to one static shape (individuals x the largest
number of observations of an individual) with a mask. The draws use their sufficient statistics
only, computed once (and again by ``simulate``): B_i' B_i, B_i' (y_i - c) and |y_i - c|^2 about
the mean c of all values, so a sweep costs O(n p^2) beside the Choleskys, whatever the number of
observations. Individuals observed at the same times share B_i' B_i, and C_i's Cholesky factor is
computed once per distinct B_i' B_i (one for all in a balanced design). The squared residuals are

    |y_i - B_i eta_i|^2 = |y_i - c|^2 - 2 (eta_i - c)' B_i' (y_i - c) + (eta_i - c)' B_i' B_i (eta_i - c)

(B(t) 1 = 1 for a clamped basis inside its range, so y_i - B_i eta_i = (y_i - c) - B_i (eta_i - c));
about c, the cancellation loses digits only when the values' variance exceeds the residual
variance by a factor near 1e13.
"""

from __future__ import annotations

import numbers

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._errors import SlamjaxInputError
from .._linalg import cholesky, solve_lower, solve_lower_transpose
from .._random import normal
from ..priors._base import inverse_gamma_draw
from ._base import ObservationModel

__all__ = ["BSplineRegression"]

DEFAULT_N_BASIS = 6  # with neither n_basis nor knots: a cubic basis with 2 interior knots
START_RIDGE = 0.1  # latent_start's ridge, a share of an average diagonal element of B_i' B_i


def _column(data: pd.DataFrame, argument: str, name) -> pd.Series:
    if not isinstance(name, str):
        raise SlamjaxInputError(f"{argument}: must be the name of a column of data (a string), got {name!r}")
    if name not in data.columns:
        raise SlamjaxInputError(
            f"{argument}: data has no column {name!r}; its columns are {list(map(str, data.columns))[:10]}"
        )
    return data[name]


def _numbers(column: pd.Series, argument: str) -> np.ndarray:
    """The column as float64 (NaN for missing); refuses text, booleans and other objects."""
    if not pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        raise SlamjaxInputError(f"{argument}: column {column.name!r} must hold numbers, has dtype {column.dtype}")
    try:
        return column.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as error:
        raise SlamjaxInputError(f"{argument}: column {column.name!r} must hold numbers: {error}") from None


def _knot_vector(t_min: float, t_max: float, degree: int, n_basis, knots) -> tuple[np.ndarray, np.ndarray]:
    """(interior knots, full clamped knot vector: the boundary knots repeated degree + 1 times)."""
    if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 0:
        raise SlamjaxInputError(f"degree: must be an integer >= 0 (3: cubic splines), got {degree!r}")
    if n_basis is not None and knots is not None:
        raise SlamjaxInputError("n_basis and knots: give one (n_basis: equally spaced interior knots), not both")
    if knots is None:
        n_basis = DEFAULT_N_BASIS if n_basis is None else n_basis
        if isinstance(n_basis, bool) or not isinstance(n_basis, numbers.Integral) or n_basis < degree + 1:
            raise SlamjaxInputError(
                f"n_basis: must be an integer >= degree + 1 = {degree + 1} (the basis functions of a spline "
                f"without interior knots), got {n_basis!r}"
            )
        interior = np.linspace(t_min, t_max, int(n_basis) - degree + 1)[1:-1]
    else:
        try:
            interior = np.asarray(knots, dtype=float)
        except (TypeError, ValueError) as error:
            raise SlamjaxInputError(f"knots: must be a sequence of interior knot times: {error}") from None
        if interior.ndim != 1:
            raise SlamjaxInputError(f"knots: must be a 1-D sequence of interior knot times, got shape {interior.shape}")
        if not np.isfinite(interior).all():
            raise SlamjaxInputError("knots: must be finite numbers")
        if interior.size and not (np.diff(interior) > 0).all():
            raise SlamjaxInputError(f"knots: must be strictly increasing, got {interior.tolist()}")
        if interior.size and not (interior[0] > t_min and interior[-1] < t_max):
            raise SlamjaxInputError(
                f"knots: interior knots must lie strictly inside the observed time range ({t_min:g}, {t_max:g}), "
                f"got {interior.tolist()}"
            )
    full = np.concatenate([np.full(degree + 1, t_min), interior, np.full(degree + 1, t_max)])
    return interior, full


def _statistics(design, y, observed, centre) -> tuple:
    """(B_i' (y_i - c), |y_i - c|^2) of every individual (NumPy or JAX arrays)."""
    xp = np if isinstance(y, np.ndarray) else jnp
    centred = xp.where(observed, y - centre, 0.0)
    return xp.einsum("nmp,nm->np", design, centred), xp.sum(centred**2, axis=1)


def _design(times: np.ndarray, knot_vector: np.ndarray, degree: int) -> np.ndarray:
    """B(t) at ``times`` (in range): (len(times), p) dense."""
    from scipy.interpolate import BSpline

    if times.size == 0:
        return np.zeros((0, len(knot_vector) - degree - 1))
    return BSpline.design_matrix(times, knot_vector, degree).toarray()


class BSplineRegression(ObservationModel):
    """Repeated measures over time of each individual, as a B-spline curve per individual
    (``sj.obs.BSplineRegression(data, time="hours", value="angle", individual="line")``).

    Arguments:
        data: a tall DataFrame, one row per observation, with a time, a value and an individual
            column. Individuals may have different numbers and times of observations; repeated
            (individual, time) rows are replicates. Rows whose value is NaN are dropped first
            (every individual must keep one observation); times must be finite numbers.
        time, value, individual: the names of those columns. The individual labels are the
            model's individuals (``sj.Model(data=...)``'s index), in the order they first appear.
        n_basis: the number of basis functions p, with p - degree - 1 equally spaced interior
            knots (default 6 when ``knots`` is not given either).
        knots: explicit interior knots instead, strictly increasing, strictly inside the observed
            time range (p = len(knots) + degree + 1).
        degree: the splines' degree (3: cubic). The basis is clamped: its boundary knots, the first
            and last observed times, are repeated degree + 1 times.
        variance_shape, variance_scale: the prior of the residual variance,
            InvGamma(shape, scale x the variance of all observed values).

    The latent traits are the spline coefficients, named "spline0", ..., "spline{p-1}" in the
    order of the basis functions (function j is non-zero between ``knot_vector[j]`` and
    ``knot_vector[j + degree + 1]``). ``basis(times)`` gives B(t) at new times inside the fitted
    range (``time_range``); ``tall()`` the observations kept.

    Recorded per draw: ``residual_variance`` (a scalar), in the values' units squared.
    """

    y: Float[Array, "n m"]  # the values, 0 on the padding
    observed: Bool[Array, "n m"]
    times: Float[Array, "n m"]  # the first time on the padding
    design: Float[Array, "n m p"]  # B(t_it), 0 on the padding
    gram: Float[Array, "n p p"]  # B_i' B_i
    distinct_grams: Float[Array, "g p p"]  # the distinct B_i' B_i
    gram_index: Int[Array, " n"]  # which of them is individual i's
    centre: Float[Array, ""]  # c, the mean of all observed values
    design_y: Float[Array, "n p"]  # B_i' (y_i - c)
    sum_of_squares: Float[Array, " n"]  # |y_i - c|^2
    prior_shape: Float[Array, ""]
    prior_rate: Float[Array, ""]
    individual_names: tuple = eqx.field(static=True)
    latent_names: tuple = eqx.field(static=True)
    knot_vector: tuple = eqx.field(static=True)
    degree: int = eqx.field(static=True)
    columns: tuple = eqx.field(static=True)  # (time, value, individual)
    n_basis: int | None = eqx.field(static=True)  # as given
    knots: tuple | None = eqx.field(static=True)  # as given
    variance_scale: float = eqx.field(static=True)

    individual_fields = ("y", "observed", "times", "design", "gram", "gram_index", "design_y", "sum_of_squares")

    def __init__(self, data: pd.DataFrame, *, time: str, value: str, individual: str, n_basis: int | None = None,
                 knots=None, degree: int = 3, variance_shape: float = 2.0, variance_scale: float = 0.1):
        if not isinstance(data, pd.DataFrame):
            raise SlamjaxInputError(
                f"data: must be a tall DataFrame (one row per observation), got {type(data).__name__}"
            )
        time_column = _column(data, "time", time)
        value_column = _column(data, "value", value)
        individual_column = _column(data, "individual", individual)
        for name, setting in (("variance_shape", variance_shape), ("variance_scale", variance_scale)):
            if isinstance(setting, bool) or not isinstance(setting, numbers.Real) or not np.isfinite(setting) or (
                    setting <= 0):
                raise SlamjaxInputError(f"{name}: must be a positive number, got {setting!r}")
        all_times = _numbers(time_column, "time")
        if not np.isfinite(all_times).all():
            rows = list(data.index[~np.isfinite(all_times)][:5])
            raise SlamjaxInputError(f"time: column {time!r} has missing or infinite times (rows {rows}); "
                                    "give every observation a finite time")
        all_values = _numbers(value_column, "value")
        if np.isinf(all_values).any():
            rows = list(data.index[np.isinf(all_values)][:5])
            raise SlamjaxInputError(f"value: column {value!r} has infinite values (rows {rows}); mark missing ones NaN")
        labels = individual_column.to_numpy()
        if pd.isna(labels).any():
            rows = list(data.index[pd.isna(labels)][:5])
            raise SlamjaxInputError(f"individual: column {individual!r} has missing labels (rows {rows})")
        names = [label.item() if isinstance(label, np.generic) else label for label in pd.unique(labels)]
        keep = ~np.isnan(all_values)  # rows with a missing value are dropped
        kept = set(pd.unique(labels[keep]))
        empty = [name for name in names if name not in kept]
        if empty:
            raise SlamjaxInputError(
                f"value: the individuals {empty[:5]} have no observed value (rows with a NaN value are dropped "
                f"first); drop them from data ({len(empty)} in all). Curves of individuals without data are "
                "still predicted through the relationship matrix: give them as levels of relmat only"
            )
        times, values, labels = all_times[keep], all_values[keep], labels[keep]
        t_min, t_max = float(times.min()), float(times.max())
        if not t_max > t_min:
            raise SlamjaxInputError(f"time: every observation is at time {t_min:g}; a curve needs a time range")
        spread = float(np.var(np.sort(values), ddof=1)) if values.size > 1 else 0.0  # sorted: order-free
        if not spread > 0:
            raise SlamjaxInputError(f"value: column {value!r} has a single distinct observed value; nothing to fit")
        interior, knot_vector = _knot_vector(t_min, t_max, degree, n_basis, knots)

        position = {name: i for i, name in enumerate(names)}
        row_of = np.array([position[label] for label in labels])
        order = np.lexsort((times, row_of))  # by individual, then time (stable: replicates keep their order)
        row_of, times, values = row_of[order], times[order], values[order]
        counts = np.bincount(row_of, minlength=len(names))
        slot = np.arange(len(row_of)) - np.repeat(np.cumsum(counts) - counts, counts)
        n, m, p = len(names), int(counts.max()), len(knot_vector) - degree - 1
        padded_times = np.full((n, m), t_min)
        padded_times[row_of, slot] = times
        padded_values = np.zeros((n, m))
        padded_values[row_of, slot] = values
        observed = np.zeros((n, m), dtype=bool)
        observed[row_of, slot] = True
        design = np.zeros((n, m, p))
        design[row_of, slot] = _design(times, knot_vector, degree)

        self.y = padded_values
        self.observed = observed
        self.times = padded_times
        self.design = design
        self.gram = np.einsum("nmp,nmq->npq", design, design)
        distinct, index = np.unique(self.gram.reshape(n, p * p), axis=0, return_inverse=True)
        self.distinct_grams = distinct.reshape(-1, p, p)
        self.gram_index = index.reshape(n).astype(np.int32)
        self.centre = np.asarray(float(np.mean(np.sort(values))))
        self.design_y, self.sum_of_squares = _statistics(design, padded_values, observed, self.centre)
        self.prior_shape = np.asarray(float(variance_shape))
        self.prior_rate = np.asarray(float(variance_scale) * spread)
        self.individual_names = tuple(names)
        self.latent_names = tuple(f"spline{j}" for j in range(p))
        self.knot_vector = tuple(float(t) for t in knot_vector)
        self.degree = int(degree)
        self.columns = (time, value, individual)
        self.n_basis = None if n_basis is None else int(n_basis)
        self.knots = None if knots is None else tuple(float(t) for t in interior)
        self.variance_scale = float(variance_scale)

    # ----------------------------------------------------------------- host
    @property
    def time_range(self) -> tuple[float, float]:
        """The first and last observed times: the range of the basis."""
        return self.knot_vector[0], self.knot_vector[-1]

    def basis(self, times) -> np.ndarray:
        """B(t): the (len(times), p) design matrix of the basis at ``times`` (inside ``time_range``)."""
        try:
            t = np.asarray(times, dtype=float).reshape(-1)
        except (TypeError, ValueError) as error:
            raise SlamjaxInputError(f"times: must be numbers: {error}") from None
        low, high = self.time_range
        outside = ~((t >= low) & (t <= high))  # NaN too
        if outside.any():
            raise SlamjaxInputError(
                f"times: the basis covers the observed time range [{low:g}, {high:g}] only; got "
                f"{t[outside][:5].tolist()}"
            )
        return _design(t, np.asarray(self.knot_vector), self.degree)

    def tall(self) -> pd.DataFrame:
        """The observations as a tall DataFrame (individual, time, value), by individual and time."""
        observed = np.asarray(self.observed)
        rows, _ = np.nonzero(observed)
        time, value, individual = self.columns
        frame = {individual: [self.individual_names[i] for i in rows], time: np.asarray(self.times)[observed],
                 value: np.asarray(self.y)[observed]}
        return pd.DataFrame({name: frame[name] for name in (individual, time, value)})

    def latent_start(self) -> np.ndarray:
        """Per individual, a ridge least-squares fit of the coefficients shrunk to the pooled fit:
        eta_i = pooled + (B_i'B_i + lambda I)^-1 B_i' (y_i - B_i pooled), lambda = 0.1 x the mean
        diagonal element of B_i'B_i over individuals (finite with fewer points than p)."""
        design, y, gram = np.asarray(self.design), np.asarray(self.y), np.asarray(self.gram)
        p = gram.shape[-1]
        total = gram.sum(axis=0)
        pooled = np.linalg.solve(total + 1e-8 * np.trace(total) / p * np.eye(p), np.einsum("nmp,nm->p", design, y))
        ridge = START_RIDGE * np.trace(gram, axis1=1, axis2=2).mean() / p
        residual = y - design @ pooled  # padding rows of the design are 0: their residual is unused
        right = np.einsum("nmp,nm->np", design, residual)
        return pooled + np.linalg.solve(gram + ridge * np.eye(p), right[..., None])[..., 0]

    def constructor_arguments(self) -> dict:
        """The observations as a tall DataFrame (rows by individual and time) and the settings."""
        time, value, individual = self.columns
        return dict(data=self.tall(), time=time, value=value, individual=individual, n_basis=self.n_basis,
                    knots=None if self.knots is None else list(self.knots), degree=self.degree,
                    variance_shape=float(self.prior_shape), variance_scale=self.variance_scale)

    # ----------------------------------------------------------------- sweep
    def init_parameters(self):
        """The residual variance at rate / shape (a tenth of the values' variance by default)."""
        return {"variance": self.prior_rate / self.prior_shape}

    def sample_latent(self, key: PRNGKeyArray, parameters, mean: Float[Array, "n p"],
                      resid_variance: Float[Array, " p"]) -> Float[Array, "n p"]:
        """eta_i ~ N(C_i^-1 (B_i'y_i / sigma2 + mean_i / v), C_i^-1), all individuals at once
        (module docstring): one p x p Cholesky per distinct B_i' B_i, batched."""
        noise_precision = 1.0 / parameters["variance"]
        prior_precision = 1.0 / resid_variance
        # one factor per distinct B_i' B_i, gathered to the individuals (batched solves: measured
        # faster in the sweep than one shared triangular solve when all are the same)
        chol = cholesky(self.distinct_grams * noise_precision + jnp.diag(prior_precision))[self.gram_index]
        # eta_i - c given the data about c: C_i (eta_i - c) = B_i'(y_i - c) / sigma2 + (mean_i - c) / v
        shift = self.design_y * noise_precision + (mean - self.centre) * prior_precision
        # C^-1 shift + L'^-1 z = L'^-1 (L^-1 shift + z)
        return self.centre + solve_lower_transpose(chol, solve_lower(chol, shift) + normal(key, mean.shape, mean.dtype))

    def _residual_sum_of_squares(self, Eta: Float[Array, "n p"]) -> Float[Array, ""]:
        """sum_i |y_i - B_i eta_i|^2 from the sufficient statistics (module docstring)."""
        centred = Eta - self.centre
        cross = jnp.sum(centred * self.design_y)
        quadratic = jnp.einsum("np,npq,nq->", centred, self.gram, centred)
        return jnp.maximum(jnp.sum(self.sum_of_squares) - 2.0 * cross + quadratic, 0.0)

    def sample_parameters(self, key: PRNGKeyArray, parameters, Eta: Float[Array, "n p"]):
        """sigma2 ~ InvGamma(a + N / 2, b + sum of squared residuals / 2)."""
        shape = self.prior_shape + 0.5 * jnp.sum(self.observed)
        rate = self.prior_rate + 0.5 * self._residual_sum_of_squares(Eta)
        return {"variance": inverse_gamma_draw(key, shape, rate)}

    def records(self, parameters):
        return {"residual_variance": parameters["variance"]}

    def record_dims(self):
        return {"residual_variance": ()}

    def sample_prior_parameters(self, key: PRNGKeyArray):
        return {"variance": inverse_gamma_draw(key, self.prior_shape, self.prior_rate)}

    def simulate(self, key: PRNGKeyArray, parameters, Eta: Float[Array, "n p"]) -> BSplineRegression:
        """y_it = B(t_it) eta_i + N(0, sigma2) on the observed points (0 on the padding)."""
        fitted = jnp.einsum("nmp,np->nm", self.design, Eta)
        noise = normal(key, self.y.shape, fitted.dtype)
        y = jnp.where(self.observed, fitted + jnp.sqrt(parameters["variance"]) * noise, 0.0)
        design_y, sum_of_squares = _statistics(self.design, y, self.observed, self.centre)
        return eqx.tree_at(lambda model: (model.y, model.design_y, model.sum_of_squares), self,
                           (y, design_y, sum_of_squares))

