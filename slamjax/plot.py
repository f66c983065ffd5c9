"""Plots of a fitted ``Run``; each function returns a matplotlib Figure.

    trace(run, var_names=("h2",), max_panels=12)     trace per chain and rank histograms per chain
    h2(run, ci_prob=0.9)                             h2 per trait: posterior mean and interval
    loadings(run)                                    heat map of posterior mean Lambda
    correlations(run, kind="genetic")                genetic and/or residual correlation heat maps
    predicted_vs_observed(run)                       fitted values against observed Y per trait
    trait_order(run, by="loadings")                  the clustered trait order the heat maps use

Every plot takes ``save=None``: a path to save the figure to (format from the suffix, dpi 150).
Figures are made with pyplot; close them (``plt.close(fig)``) when making many in a loop.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ._errors import SlamjaxInputError

__all__ = ["correlations", "h2", "loadings", "predicted_vs_observed", "trace", "trait_order"]

_SAMPLE_DIMS = ("chain", "draw")
_MAX_LABELS = 50  # trait labels on the axes when p <= this
_ORDERS = ("loadings", "genetic", "residual", "none")


# --------------------------------------------------------------------------- helpers


def _check_run(run, where: str):
    from .run import Run

    if not isinstance(run, Run):
        raise SlamjaxInputError(f"{where}: run must be the sj.Run returned by sj.sample, got {type(run).__name__}")


def _check_count(where: str, name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SlamjaxInputError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_prob(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        0.0 < float(value) < 1.0
    ):
        raise SlamjaxInputError(f"{where}: ci_prob must be a probability in (0, 1), e.g. 0.9; got {value!r}")
    return float(value)


def _figure(width: float, height: float):
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), layout="constrained")


def _finish(fig, save):
    if save is not None:
        if not isinstance(save, (str, os.PathLike)):
            raise SlamjaxInputError(f"save: must be a file path (str or pathlib.Path), got {type(save).__name__}")
        fig.savefig(save, dpi=150)
    return fig


def _effect(run, effect, where: str) -> str:
    names = list(run.model.effect_names)
    if effect is None:
        return names[0]
    if not isinstance(effect, str) or effect not in names:
        raise SlamjaxInputError(f"{where}: unknown effect {effect!r}; choose one of the random effects {names}")
    return effect


def _G(run, effect: str) -> np.ndarray:
    G = run.posterior_mean("G")
    return np.asarray((G[effect] if isinstance(G, dict) else G).values, dtype=float)


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    corr = np.clip(np.nan_to_num(corr, nan=0.0), -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


#: clustered trait orders use scipy's optimal leaf ordering up to this many traits
OPTIMAL_ORDERING_MAX = 500


def _cluster(features: np.ndarray | None = None, distance: np.ndarray | None = None) -> np.ndarray:
    """Leaf order of average-linkage clustering of rows or of a distance matrix, with optimal leaf
    ordering up to ``OPTIMAL_ORDERING_MAX`` rows (it costs about 9 s at 2,000 and grows as n^3)."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    n = features.shape[0] if features is not None else distance.shape[0]
    if n < 3:
        return np.arange(n)
    optimal = n <= OPTIMAL_ORDERING_MAX
    if distance is not None:
        distance = np.clip((distance + distance.T) / 2.0, 0.0, None)
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(distance, checks=False), method="average", optimal_ordering=optimal)
    else:
        tree = linkage(features, method="average", metric="euclidean", optimal_ordering=optimal)
    return leaves_list(tree)


def _order(run, order, effect: str, where: str) -> np.ndarray:
    """Positions of the traits in the order asked for (see ``trait_order``)."""
    traits = list(run.model.trait_names)
    if isinstance(order, str):
        if order not in _ORDERS:
            raise SlamjaxInputError(
                f"{where}: unknown order {order!r}; choose one of {list(_ORDERS)} or pass a list of all trait names"
            )
        if order == "none":
            return np.arange(len(traits))
        if order == "loadings":
            return _cluster(features=np.asarray(run.posterior_mean("Lambda").values, dtype=float).T)
        cov = _G(run, effect) if order == "genetic" else np.asarray(run.posterior_mean("R").values, dtype=float)
        return _cluster(distance=1.0 - _correlation(cov))
    given = list(order) if order is not None and not isinstance(order, bytes) else None
    if given is None or sorted(map(str, given)) != sorted(traits) or len(set(given)) != len(given):
        raise SlamjaxInputError(
            f"{where}: order must be one of {list(_ORDERS)} or a list holding every trait name once "
            f"({len(traits)} traits, e.g. {traits[:3]})"
        )
    position = {t: i for i, t in enumerate(traits)}
    return np.array([position[str(t)] for t in given], dtype=int)


def _label_traits(ax, names: list[str], axis: str) -> None:
    if len(names) > _MAX_LABELS:
        (ax.set_xticks if axis == "x" else ax.set_yticks)([])
        return
    ticks = np.arange(len(names))
    if axis == "x":
        ax.set_xticks(ticks, names, rotation=90, fontsize=8)
    else:
        ax.set_yticks(ticks, names, fontsize=8)


# --------------------------------------------------------------------------- public


def trait_order(run, by: str = "loadings", effect: str | None = None) -> list[str]:
    """Trait names in the order the heat maps use.

    ``by="loadings"``: average-linkage clustering (Euclidean, optimal leaf order) of the traits'
    posterior mean loading vectors (rows of Lambda'); ``"genetic"`` / ``"residual"``: clustering on
    1 - correlation from posterior mean G (of ``effect``, default the first) / R; ``"none"``: model order.
    """
    _check_run(run, "trait_order")
    effect = _effect(run, effect, "trait_order")
    if not isinstance(by, str):
        raise SlamjaxInputError(f"trait_order: by must be one of {list(_ORDERS)}, got {by!r}")
    traits = run.model.trait_names
    return [traits[i] for i in _order(run, by, effect, "trait_order")]


def trace(run, var_names=("h2",), max_panels: int = 12, *, save=None):
    """Trace per chain (left) and rank histograms per chain (right) of recorded draws.

    ``var_names``: variables of ``run.posterior`` (e.g. "h2", "G", "B", "Lambda"); each element is one
    row of panels (for G and R the upper triangle only), at most ``max_panels`` rows in all (the
    first ones; the title says how many were left out). Ranks are over all chains' draws pooled;
    for well-mixed chains every chain's histogram is flat around the dashed line.
    """
    from scipy.stats import rankdata

    _check_run(run, "trace")
    max_panels = _check_count("trace", "max_panels", max_panels, 1)
    if isinstance(var_names, str):
        var_names = [var_names]
    try:
        var_names = list(var_names)
    except TypeError:
        raise SlamjaxInputError(f"trace: var_names must be a name or a list of names, got {var_names!r}") from None
    posterior = run.posterior
    recorded = sorted(posterior.data_vars)
    unknown = [v for v in var_names if not isinstance(v, str) or v not in recorded]
    if not var_names:
        raise SlamjaxInputError(f"trace: var_names is empty; name at least one of the recorded draws {recorded}")
    if unknown:
        hint = " (G and R are recorded per draw when sj.sample(..., record_covariances=True))"
        raise SlamjaxInputError(f"trace: unknown var_names {unknown}; choose from the recorded draws {recorded}{hint}")

    panels = []  # (label, (chain, draw) array)
    total = 0
    for name in var_names:
        da = posterior[name]
        other = [d for d in da.dims if d not in _SAMPLE_DIMS]
        values = np.asarray(da.transpose(*_SAMPLE_DIMS, *other).values, dtype=float)
        shape = values.shape[2:]
        for index in np.ndindex(*shape):
            if "trait2" in other and index[other.index("trait")] > index[other.index("trait2")]:
                continue  # G, R: upper triangle only
            total += 1
            if len(panels) >= max_panels:
                continue
            labels = [str(da.coords[d].values[i]) for d, i in zip(other, index)]
            panels.append((f"{name}[{', '.join(labels)}]" if labels else name, values[(slice(None), slice(None)) + index]))

    n_chains, n_draws = panels[0][1].shape
    bins = int(np.clip(n_draws // 10, 1, 20))
    fig = _figure(10.0, 0.6 + 1.7 * len(panels))
    axes = fig.subplots(len(panels), 2, squeeze=False, gridspec_kw={"width_ratios": [3, 1]})
    for row, (label, x) in enumerate(panels):
        ax_trace, ax_rank = axes[row]
        ranks = rankdata(x.ravel(), method="average").reshape(x.shape)
        edges = np.linspace(0.5, x.size + 0.5, bins + 1)
        for c in range(n_chains):
            colour = f"C{c % 10}"
            ax_trace.plot(np.arange(n_draws), x[c], color=colour, lw=0.7, alpha=0.8, label=f"chain {c}")
            counts, _ = np.histogram(ranks[c], bins=edges)
            ax_rank.stairs(counts, edges, color=colour, lw=1.2)
        ax_rank.axhline(n_draws / bins, color="0.4", ls="--", lw=0.8)
        ax_rank.set_ylim(bottom=0)
        ax_rank.set_yticks([])
        ax_trace.set_ylabel(label, fontsize=8)
        if row == 0:
            ax_trace.set_title("trace", fontsize=9)
            ax_rank.set_title("rank histogram (all chains pooled)", fontsize=9)
            if n_chains > 1:
                ax_trace.legend(fontsize=7, loc="upper right", ncol=min(n_chains, 4))
    axes[-1, 0].set_xlabel("draw")
    axes[-1, 1].set_xlabel("rank")
    if total > len(panels):
        fig.suptitle(f"first {len(panels)} of {total} panels (raise max_panels to see more)", fontsize=9)
    return _finish(fig, save)


def h2(run, ci_prob: float = 0.9, *, save=None):
    """h2 per trait: posterior mean (dot) and equal-tailed ``ci_prob`` interval (line) of the draws.

    Traits are sorted by posterior mean (with several random effects: of the sum over effects), largest
    on top; with several random effects each effect has its own colour, side by side (dodged).
    """
    _check_run(run, "h2")
    ci_prob = _check_prob("h2", ci_prob)
    da = run.posterior["h2"]
    if "effect" not in da.dims:
        da = da.expand_dims(effect=list(run.model.effect_names[:1]), axis=2)
    values = np.asarray(da.transpose(*_SAMPLE_DIMS, "effect", "trait").values, dtype=float)
    pooled = values.reshape((-1,) + values.shape[2:])  # (draws, effects, p)
    mean = pooled.mean(axis=0)
    lower, upper = np.quantile(pooled, [(1.0 - ci_prob) / 2.0, (1.0 + ci_prob) / 2.0], axis=0)
    effects = [str(e) for e in da.coords["effect"].values]
    traits = [str(t) for t in da.coords["trait"].values]
    order = np.argsort(-mean.sum(axis=0), kind="stable")
    n_effects, p = mean.shape

    fig = _figure(6.5, min(1.5 + 0.22 * p * max(1, 0.6 * n_effects), 24.0))
    ax = fig.subplots()
    width = 0.7
    offsets = (np.arange(n_effects) - (n_effects - 1) / 2.0) * (width / n_effects) if n_effects > 1 else [0.0]
    y = np.arange(p)
    for e in range(n_effects):
        colour = f"C{e % 10}"
        ye = y + offsets[e]
        ax.hlines(ye, lower[e, order], upper[e, order], color=colour, lw=1.5, alpha=0.7)
        ax.plot(mean[e, order], ye, "o", color=colour, ms=4, label=effects[e])
    _label_traits(ax, [traits[i] for i in order], "y")
    ax.set_ylim(p - 0.5, -0.5)
    ax.set_xlim(0.0, 1.0)
    ax.grid(axis="x", color="0.9")
    ax.set_xlabel("h2 (variance proportion)" if n_effects > 1 else "h2")
    ax.set_title(f"posterior mean and {ci_prob:.0%} equal-tailed interval", fontsize=10)
    if n_effects > 1:
        ax.legend(title="random effect", fontsize=8, title_fontsize=8, loc="best")
    return _finish(fig, save)


def loadings(run, order="loadings", chain: int | None = None, *, save=None):
    """Heat map of the posterior mean of Lambda (factors x traits), diverging colours centred at 0.

    The mean is over draws aligned by ``run.aligned_loadings()`` (varimax, then factor order and
    signs matched across draws and chains). ``order``: the traits' order, as in ``trait_order``
    ("loadings", "genetic", "residual", "none") or a list of all trait names. ``chain``: average
    one chain only; default all chains.
    """
    _check_run(run, "loadings")
    traits = list(run.model.trait_names)
    factors = list(run.model.factor_names)
    if chain is None:
        Lambda = np.asarray(run.posterior_mean("Lambda").values, dtype=float)
    else:
        n_chains = run.settings["num_chains"]
        if isinstance(chain, bool) or not isinstance(chain, (int, np.integer)) or not 0 <= chain < n_chains:
            raise SlamjaxInputError(f"loadings: chain must be None or an integer in 0..{n_chains - 1}, got {chain!r}")
        Lambda = run.aligned_loadings().values[int(chain)].mean(axis=0)
    positions = _order(run, order, run.model.effect_names[0], "loadings")
    if isinstance(order, str) and order == "loadings" and chain is not None:
        positions = _cluster(features=Lambda.T)
    shown = Lambda[:, positions]
    k, p = shown.shape
    limit = float(np.max(np.abs(shown))) or 1.0

    width = 2.0 + 0.22 * p if p <= _MAX_LABELS else 10.0  # a column per labelled trait; unlabelled: fixed
    fig = _figure(min(max(5.0, width), 20.0), min(max(2.2, 1.6 + 0.3 * k), 12.0))
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    _label_traits(ax, [traits[i] for i in positions], "x")
    if k <= _MAX_LABELS:
        ax.set_yticks(np.arange(k), factors, fontsize=8)
    else:
        ax.set_yticks([])
    fig.colorbar(image, ax=ax, label="loading", shrink=0.9)
    ax.set_title("posterior mean loadings (Lambda)" + ("" if chain is None else f", chain {chain}"), fontsize=10)
    return _finish(fig, save)


def correlations(run, kind: str = "genetic", effect: str | None = None, order="genetic", *, save=None):
    """Heat maps of the genetic correlation (from posterior mean G of ``effect``, default the first random
    effect) and/or the residual correlation (from posterior mean R), colour range -1..1.

    ``kind``: "genetic", "residual" or "both" (side by side, same trait order). ``order``: as in
    ``trait_order`` ("genetic", "residual", "loadings", "none") or a list of all trait names.
    Trait names label the axes when p <= 50.
    """
    _check_run(run, "correlations")
    kinds = {"genetic": ["genetic"], "residual": ["residual"], "both": ["genetic", "residual"]}
    if not isinstance(kind, str) or kind not in kinds:
        raise SlamjaxInputError(f"correlations: unknown kind {kind!r}; choose 'genetic', 'residual' or 'both'")
    effect = _effect(run, effect, "correlations")
    positions = _order(run, order, effect, "correlations")
    names = [run.model.trait_names[i] for i in positions]
    matrices = {
        "genetic": lambda: _correlation(_G(run, effect)),
        "residual": lambda: _correlation(np.asarray(run.posterior_mean("R").values, dtype=float)),
    }
    several = len(run.model.effect_names) > 1
    titles = {"genetic": f"genetic correlation ({effect})" if several else "genetic correlation",
              "residual": "residual correlation"}

    shown = kinds[kind]
    p = len(names)
    side = min(max(4.0, 1.5 + 0.2 * p), 14.0)
    fig = _figure(side * len(shown) + 1.0, side)
    axes = np.atleast_1d(fig.subplots(1, len(shown)))
    for ax, which in zip(axes, shown):
        corr = matrices[which]()[np.ix_(positions, positions)]
        image = ax.imshow(corr, cmap="RdBu_r", vmin=-1.0, vmax=1.0, interpolation="nearest")
        _label_traits(ax, names, "x")
        _label_traits(ax, names, "y")
        ax.set_title(titles[which], fontsize=10)
    fig.colorbar(image, ax=list(axes), label="correlation", shrink=0.8)
    return _finish(fig, save)


def predicted_vs_observed(run, traits=None, max_traits: int = 16, *, save=None):
    """Posterior mean fitted values (``run.posterior_mean("Eta_mean")``) against observed Y, per trait.

    One panel per trait (``traits``: names to show; default the first ``max_traits``), observed cells
    only, with the 1:1 line and the Pearson correlation r and number of observed cells n in the title.
    """
    _check_run(run, "predicted_vs_observed")
    max_traits = _check_count("predicted_vs_observed", "max_traits", max_traits, 1)
    names = list(run.model.trait_names)
    if traits is None:
        positions = list(range(min(len(names), max_traits)))
    else:
        if isinstance(traits, str):
            traits = [traits]
        traits = list(traits)
        unknown = [t for t in traits if t not in names]
        if unknown or not traits:
            raise SlamjaxInputError(
                f"predicted_vs_observed: unknown traits {unknown[:5]}; choose from the model's traits (e.g. {names[:3]})"
            )
        positions = [names.index(t) for t in traits]
    observed = np.asarray(run.model.inputs.Y, dtype=float)
    fitted = np.asarray(run.posterior_mean("Eta_mean").loc[run.model.individual_names].values, dtype=float)

    n = len(positions)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = _figure(2.8 * ncols, 2.7 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, j in zip(axes, positions):
        seen = ~np.isnan(observed[:, j])
        x, y = observed[seen, j], fitted[seen, j]
        ax.scatter(x, y, s=6, alpha=0.5, color="C0", edgecolors="none")
        if x.size:
            low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
            ax.plot([low, high], [low, high], color="0.3", lw=0.8, ls="--")
        r = np.corrcoef(x, y)[0, 1] if x.size > 1 and np.std(x) > 0 and np.std(y) > 0 else np.nan
        ax.set_title(f"{names[j]}\nr = {r:.2f}, n = {x.size}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.supxlabel("observed", fontsize=9)
    fig.supylabel("fitted (posterior mean)", fontsize=9)
    if traits is None and len(names) > n:
        fig.suptitle(f"first {n} of {len(names)} traits (choose with traits=...)", fontsize=9)
    return _finish(fig, save)


def inclusion(run, traits=None, by: str = "trait", *, save=None):
    """Manhattan-style plot of a spike-and-slab marker prior's inclusion probabilities along the
    genome (markers in map order, chromosomes in alternating colours).

    ``by="trait"`` plots, per marker, the largest probability over ``traits`` (default all);
    ``by="factor"`` over factors. Needs a model built with a marker map
    (``sj.markers.Markers(genotypes, map=..., window=...)``); without one, markers are in their order.
    """
    _check_run(run, "inclusion")
    table = run.inclusion_probabilities(by=by)
    if traits is not None:
        if by != "trait":
            raise SlamjaxInputError("inclusion: traits applies to by='trait' only")
        unknown = [t for t in traits if t not in table.columns]
        if unknown:
            raise SlamjaxInputError(f"inclusion: unknown traits {unknown[:5]}")
        table = table[list(traits)]
    value = table.max(axis=1).to_numpy()
    positions = run.model.markers.positions
    if positions is None:
        x, chromosome = np.arange(len(value)), np.zeros(len(value), dtype=int)
        ticks, labels = [], []
    else:
        chrom_labels = list(dict.fromkeys(positions["chromosome"].astype(str)))
        chromosome = positions["chromosome"].astype(str).map({c: i for i, c in enumerate(chrom_labels)}).to_numpy()
        pos = positions["position"].to_numpy(dtype=float)
        offsets, x, ticks = 0.0, np.zeros(len(pos)), []
        for i in range(len(chrom_labels)):
            on = chromosome == i
            x[on] = pos[on] - pos[on].min() + offsets
            ticks.append(offsets + (pos[on].max() - pos[on].min()) / 2.0)
            offsets += pos[on].max() - pos[on].min() + 1e-9 + 0.02 * (pos.max() - pos.min() + 1.0)
        labels = chrom_labels
    fig = _figure(10.0, 3.2)
    ax = fig.subplots()
    ax.scatter(x, value, s=6, c=np.where(chromosome % 2 == 0, "C0", "0.45"))
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("inclusion probability")
    if ticks:
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_xlabel("chromosome")
    else:
        ax.set_xlabel("marker")
    ax.set_title(f"posterior inclusion probability (largest over {by}s)", fontsize=10)
    return _finish(fig, save)

