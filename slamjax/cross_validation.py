"""``cross_validate``: K-fold cross-validation of a model by masking cells and predicting them.

For every fold f (one after another) the cells (individuals in f) x ``traits`` that are observed
are set missing (``Model.masked``), the masked model is fitted with ``sj.sample`` and each masked
cell is predicted by the posterior mean of its fitted value X B + F Lambda + Z U_R (``Eta_mean``:
the information of the individual's other traits, its relatives and its fixed effects). Accuracy
is the Pearson correlation between predictions and held-out observations, per fold and trait,
and pooled over all folds per trait. Masked models of equal shapes share the compiled sampler.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd

from ._errors import SlamjaxInputError
from ._x64 import float64
from .model import Model

__all__ = ["CrossValidation", "cross_validate"]


@dataclasses.dataclass(frozen=True)
class CrossValidation:
    """The result of :func:`cross_validate`.

    Attributes:
      correlations: DataFrame folds x traits, Pearson correlation of predictions and held-out
        observations within the fold (NaN with fewer than 2 cells or no spread).
      pooled: Series by trait, the correlation over all held-out cells of all folds.
      predictions: DataFrame individuals x traits, the prediction of every held-out cell (posterior
        mean fitted value from the fold in which it was held out), NaN elsewhere.
      observed: DataFrame individuals x traits, the held-out observations, NaN elsewhere.
      fold_seconds: Series by fold, wall time of each fold (model set-up, sampling, prediction).
      sampler_seconds: Series by fold, time in ``sj.sample`` (including any compilation).
      sweeps: Gibbs sweeps per fold and chain (num_warmup + num_samples * thin).
      elapsed: total seconds.
    """

    correlations: pd.DataFrame
    pooled: pd.Series
    predictions: pd.DataFrame
    observed: pd.DataFrame
    fold_seconds: pd.Series
    sampler_seconds: pd.Series
    sweeps: int
    elapsed: float

    @property
    def seconds_per_iteration(self) -> float:
        """Seconds in the sampler per sweep (all chains together), over all folds."""
        return float(self.sampler_seconds.sum()) / (self.sweeps * len(self.sampler_seconds))

    def __repr__(self) -> str:
        pooled = ", ".join(f"{t}={v:.3f}" for t, v in self.pooled.items())
        return f"CrossValidation({len(self.correlations)} folds, pooled accuracy {pooled}, {self.elapsed:.1f} s)"


def _fold_labels(model: Model, folds) -> pd.Series:
    """``folds`` as a Series indexed by the model's individuals (NaN: never held out)."""
    if isinstance(folds, pd.DataFrame):
        if folds.shape[1] != 1:
            raise SlamjaxInputError(
                f"folds: a DataFrame must have one column (the fold of each individual), got {folds.shape[1]}"
            )
        folds = folds.iloc[:, 0]
    if not isinstance(folds, pd.Series):
        raise SlamjaxInputError(
            f"folds: must be a pandas Series (individual name -> fold label), got {type(folds).__name__}"
        )
    if folds.index.has_duplicates:
        raise SlamjaxInputError(f"folds: duplicated individuals {list(folds.index[folds.index.duplicated()][:5])}")
    names = pd.Index(model.individual_names)
    unknown = folds.index.difference(names)
    if len(unknown):
        raise SlamjaxInputError(
            f"folds: {len(unknown)} individuals are not in the model (e.g. {list(unknown[:5])}); "
            "index folds by the individual names of Y"
        )
    folds = folds.reindex(names)
    if folds.notna().sum() == 0:
        raise SlamjaxInputError("folds: no individual has a fold label")
    return folds


def _trait_positions(model: Model, traits) -> list[int]:
    names = list(model.trait_names)
    if traits is None:
        return list(range(len(names)))
    if isinstance(traits, str) or np.ndim(traits) == 0:
        traits = [traits]
    traits = list(traits)
    unknown = [t for t in traits if t not in names]
    if unknown:
        raise SlamjaxInputError(f"traits: {unknown} are not traits of the model; the traits are {names}")
    if len(set(traits)) != len(traits):
        raise SlamjaxInputError(f"traits: duplicated trait names in {traits}")
    return [names.index(t) for t in traits]


def _correlation(prediction: np.ndarray, observation: np.ndarray) -> float:
    if prediction.size < 2 or np.ptp(prediction) == 0 or np.ptp(observation) == 0:
        return float("nan")
    return float(np.corrcoef(prediction, observation)[0, 1])


@float64
def cross_validate(
    model: Model,
    folds,
    traits=None,
    *,
    num_warmup: int,
    num_samples: int,
    thin: int = 1,
    num_chains: int = 1,
    seed: int = 0,
    progress: bool = False,
    dtype: str = "float64",
    **model_changes,
) -> CrossValidation:
    """K-fold cross-validation: mask each fold's observed cells, refit, predict them.

    Arguments:
      model: the ``sj.Model`` with all data.
      folds: Series (or one-column DataFrame) mapping individual name -> fold label; individuals
        absent or labelled NaN are never held out.
      traits: the traits held out (default all); the other traits of a fold's individuals stay
        observed and inform the predictions.
      num_warmup, num_samples, thin, num_chains, seed, progress, dtype: passed to ``sj.sample`` for
        every fold (the same seed for every fold; ``dtype="float32"`` for GPUs).
      model_changes: constructor arguments changed for the masked models (e.g. ``missing="impute"``).

    For fold f the cells (individuals in f) x traits observed in Y are masked
    (``model.masked(mask, **model_changes)``), the model is fitted and every masked cell is
    predicted by its posterior mean fitted value ``Eta_mean`` = X B + F Lambda + Z U_R.
    Folds run one after another; masked models with the same shapes reuse the compiled sampler.
    Every argument is checked before any fold runs.
    """
    from ._dtype import check_dtype
    from .run import _check_count, sample

    dtype = check_dtype(dtype)
    if not isinstance(model, Model):
        raise SlamjaxInputError(f"model: must be an sj.Model, got {type(model).__name__}")
    _check_count("num_warmup", num_warmup, 0)
    _check_count("num_samples", num_samples, 1)
    _check_count("thin", thin, 1)
    _check_count("num_chains", num_chains, 1)
    unknown = sorted(set(model_changes) - set(model._arguments))
    if unknown:
        raise SlamjaxInputError(
            f"cross_validate: {unknown} are neither cross-validation settings nor sj.Model arguments "
            f"(those are {sorted(model._arguments)})"
        )
    labels = _fold_labels(model, folds)
    columns = _trait_positions(model, traits)
    Y = np.asarray(model.inputs.Y, dtype=float)
    observed = ~np.isnan(Y)
    trait_names = list(model.trait_names)
    held_traits = np.zeros(Y.shape[1], dtype=bool)
    held_traits[columns] = True

    fold_names = sorted(labels.dropna().unique(), key=lambda v: (str(type(v)), v))
    masks = {}
    for fold in fold_names:
        in_fold = (labels == fold).to_numpy()
        mask = in_fold[:, None] & held_traits[None, :] & observed
        if not mask.any():
            raise SlamjaxInputError(f"folds: fold {fold!r} holds out no observed cell of the traits {trait_names}")
        left = (observed & ~mask).sum(axis=0)
        empty = [trait_names[j] for j in columns if left[j] < 2]
        if empty:
            raise SlamjaxInputError(
                f"folds: holding out fold {fold!r} leaves the traits {empty} with fewer than 2 observations; "
                "use more folds or fewer individuals per fold"
            )
        masks[fold] = mask

    started = time.perf_counter()
    predictions = np.full(Y.shape, np.nan)
    correlations = np.full((len(fold_names), len(columns)), np.nan)
    fold_seconds, sampler_seconds = [], []
    for f, fold in enumerate(fold_names):
        fold_started = time.perf_counter()
        mask = masks[fold]
        run = sample(
            model.masked(mask, **model_changes), num_warmup=num_warmup, num_samples=num_samples, thin=thin,
            num_chains=num_chains, seed=seed, progress=progress, dtype=dtype,
        )
        fitted = run.predict("fitted", levels=model.individual_names).to_numpy()  # the model's order
        predictions[mask] = fitted[mask]
        for c, j in enumerate(columns):
            rows = mask[:, j]
            correlations[f, c] = _correlation(fitted[rows, j], Y[rows, j])
        sampler_seconds.append(run.elapsed)
        fold_seconds.append(time.perf_counter() - fold_started)

    held = ~np.isnan(predictions)
    pooled = [_correlation(predictions[held[:, j], j], Y[held[:, j], j]) for j in columns]
    chosen = [trait_names[j] for j in columns]
    index = pd.Index(model.individual_names)
    fold_index = pd.Index(fold_names, name="fold")
    return CrossValidation(
        correlations=pd.DataFrame(correlations, index=fold_index, columns=chosen),
        pooled=pd.Series(pooled, index=chosen, name="accuracy"),
        predictions=pd.DataFrame(predictions, index=index, columns=trait_names)[chosen],
        observed=pd.DataFrame(np.where(held, Y, np.nan), index=index, columns=trait_names)[chosen],
        fold_seconds=pd.Series(fold_seconds, index=fold_index, name="seconds"),
        sampler_seconds=pd.Series(sampler_seconds, index=fold_index, name="seconds"),
        sweeps=num_warmup + num_samples * thin,
        elapsed=time.perf_counter() - started,
    )
