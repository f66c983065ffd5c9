"""voom precision weights for RNA-seq counts (Law, Chen, Shi and Smyth 2014, Genome Biology 15:R29).

A numpy port of limma's ``voom()`` (limma 3.54; no JAX). Individuals are rows (n individuals x g
genes: the transpose of limma's genes x samples). With counts ``c_ig`` and a design ``X`` (n x b,
full column rank, n >= b + 1):

    lib_i       = sum_g c_ig                   (or the lib_size given), times norm_factors_i if given
    y_ig        = log2((c_ig + 0.5) / (lib_i + 1) * 1e6)                       the log2-cpm
    fit         = least squares of every gene's y on X at once (one QR of X)
    s_g         = sqrt(RSS_g / (n - b))                                        residual sd
    sx_g        = mean_i(y_ig) + mean_i(log2(lib_i + 1)) - log2(1e6)           mean log2 count
    sy_g        = sqrt(s_g)
    trend       = lowess(sx, sy, f = span)  (R's lowess: iter = 3, delta = 0.01 * diff(range(sx)))
    f           = linear interpolation of the trend, constant beyond its range (approxfun, rule = 2)
    mu_ig       = (X beta_g)_i                                                 fitted log2-cpm
    count_ig    = 1e-6 * 2^mu_ig * (lib_i + 1)                                 fitted count
    w_ig        = 1 / f(log2(count_ig))^4                                      the precision weight

As in limma, genes whose counts are all zero get log-cpm values and weights but are left out of the
trend fit (their sx would pile up at the low end). ``lowess`` below is a line-by-line port of R's
``clowess`` (R's src/library/stats/src/lowess.c), including its handling of tied x values, the
``delta`` skipping with linear interpolation, and the robustness weights (bisquare of the residuals
over 6 median absolute residuals); ``_approx_rule2`` is R's ``approxfun(..., rule = 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import SlamjaxInputError

__all__ = ["VoomWeights", "voom_weights", "lowess"]


@dataclass(frozen=True)
class VoomWeights:
    """The output of :func:`voom_weights`.

    ``logcpm`` and ``weights`` are n individuals x g genes; ``lib_size`` the (effective) library
    sizes used, length n. When ``counts`` was a pandas DataFrame, ``logcpm`` and ``weights`` are
    DataFrames with its index (individuals) and columns (genes) and ``lib_size`` is a Series on its
    index; otherwise all three are numpy arrays. ``sx``, ``sy`` (length g, numpy) are each gene's
    mean log2 count and sqrt residual sd (NaN-free; all-zero genes included although they are not
    used in the trend); ``trend_x``, ``trend_y`` are R's ``lowess`` output (sorted sx of the genes
    in the trend, and the fitted sqrt sd) for a mean-variance plot.
    """

    logcpm: np.ndarray | pd.DataFrame
    weights: np.ndarray | pd.DataFrame
    lib_size: np.ndarray | pd.Series
    sx: np.ndarray
    sy: np.ndarray
    trend_x: np.ndarray
    trend_y: np.ndarray


# ------------------------------------------------------------------------------------- lowess


def _lowest(
    x: np.ndarray, y: np.ndarray, xs: float, nleft: int, nright: int, rw: np.ndarray | None
) -> float | None:
    """R's ``lowest``: the locally weighted linear fit at ``xs`` from x[nleft..nright] (0-based,
    plus any points tied at the right end); None when all weights are zero."""
    n = x.shape[0]
    span_range = x[n - 1] - x[0]
    h = max(xs - x[nleft], x[nright] - xs)
    h9, h1 = 0.999 * h, 0.001 * h
    # R walks j = nleft, nleft+1, ... and stops at the first point right of xs with |x - xs| > h9.
    end = int(np.searchsorted(x, xs + h, side="right")) + 1
    xw = x[nleft:min(end, n)]
    r = np.abs(xw - xs)
    stop = np.flatnonzero((r > h9) & (xw > xs))
    nrt = stop[0] if stop.size else xw.shape[0]  # points nleft .. nleft + nrt - 1 take part
    xw, r = xw[:nrt], r[:nrt]
    yw = y[nleft:nleft + nrt]
    w = np.where(r <= h1, 1.0, _cube(1.0 - _cube(r / h))) if h > 0 else np.ones_like(r)
    w = np.where(r <= h9, w, 0.0)
    if rw is not None:
        w = w * rw[nleft:nleft + nrt]
    a = _seqsum(w)
    if a <= 0.0:
        return None
    w = w / a
    if h > 0.0:
        a = _seqsum(w * xw)
        b = xs - a
        c = _seqsum(w * ((xw - a) * (xw - a)))
        if np.sqrt(c) > 0.001 * span_range:
            b = b / c
            w = w * (b * (xw - a) + 1.0)
    return _seqsum(w * yw)


def _cube(v: np.ndarray) -> np.ndarray:
    return v * v * v  # R's fcube (pow() rounds differently)


def _square(v: np.ndarray) -> np.ndarray:
    return v * v


def _seqsum(v: np.ndarray) -> float:
    """Sum in index order, as C's loop does (numpy's pairwise sum differs in the last bits)."""
    return float(np.add.accumulate(v)[-1]) if v.size else 0.0


def _clowess(x: np.ndarray, y: np.ndarray, f: float, nsteps: int, delta: float) -> np.ndarray:
    """R's ``clowess`` on x sorted ascending: the fitted values at every x."""
    n = x.shape[0]
    if n < 2:
        return y.copy()
    ns = max(2, min(n, int(f * n + 1e-7)))
    ys = np.empty(n)
    rw: np.ndarray | None = None
    for it in range(1, nsteps + 2):
        nleft, nright, last, i = 0, ns - 1, -1, 0
        while True:
            if nright < n - 1:
                d1 = x[i] - x[nleft]
                d2 = x[nright + 1] - x[i]
                if d1 > d2:
                    nleft += 1
                    nright += 1
                    continue
            fit = _lowest(x, y, x[i], nleft, nright, rw if it > 1 else None)
            ys[i] = y[i] if fit is None else fit
            if last < i - 1:  # skipped points: interpolate
                denom = x[i] - x[last]
                j = np.arange(last + 1, i)
                alpha = (x[j] - x[last]) / denom
                ys[j] = alpha * ys[i] + (1.0 - alpha) * ys[last]
            last = i
            cut = x[last] + delta
            ties_end = int(np.searchsorted(x, x[last], side="right"))  # ties of x[last] follow it
            ys[last + 1:ties_end] = ys[last]
            last = ties_end - 1
            brk = int(np.searchsorted(x, cut, side="right"))  # first index with x > cut, or n
            i = max(last + 1, brk - 1)
            if last >= n - 1:
                break
        res = y - ys
        sc = _seqsum(np.abs(res)) / n
        if it > nsteps:
            break
        ar = np.abs(res)
        srt = np.sort(ar)
        m1 = n // 2
        cmad = 3.0 * (srt[m1] + srt[n - m1 - 1]) if n % 2 == 0 else 6.0 * srt[m1]
        if cmad < 1e-7 * sc:
            break
        c9, c1 = 0.999 * cmad, 0.001 * cmad
        rw = np.where(ar <= c1, 1.0, np.where(ar <= c9, _square(1.0 - _square(ar / cmad)), 0.0))
    return ys


def lowess(
    x: np.ndarray, y: np.ndarray, f: float = 2 / 3, iter: int = 3, delta: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """R's ``lowess(x, y, f, iter, delta)``: (x sorted ascending, the smoothed y at those x).

    ``delta`` defaults to R's ``0.01 * diff(range(x))``. Ties in x keep their input order (R's
    ``order`` is stable) and get the same fitted value.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise SlamjaxInputError(f"lowess: x and y must be 1-d of the same nonzero length, got {x.shape}, {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise SlamjaxInputError("lowess: x and y must be finite; drop the NaN/inf values first")
    if not (np.isfinite(f) and f > 0):
        raise SlamjaxInputError(f"lowess: f must be finite and > 0, got {f}")
    if iter < 0:
        raise SlamjaxInputError(f"lowess: iter must be >= 0, got {iter}")
    o = np.argsort(x, kind="stable")
    xo, yo = x[o], y[o]
    if delta is None:
        delta = 0.01 * (xo[-1] - xo[0])
    return xo, _clowess(xo, yo, float(f), int(iter), float(delta))


def _approx_rule2(xs: np.ndarray, ys: np.ndarray, v: np.ndarray) -> np.ndarray:
    """R's ``approxfun(xs, ys, rule = 2)(v)`` for xs sorted ascending (ties collapsed to the mean
    of their y, as R's default ``ties = mean``): linear interpolation, constant outside."""
    xu, start = np.unique(xs, return_index=True)
    counts = np.diff(np.append(start, xs.shape[0]))
    yu = np.add.reduceat(ys, start) / counts
    if xu.shape[0] == 1:
        return np.full(v.shape, yu[0])
    i = np.clip(np.searchsorted(xu, v, side="right") - 1, 0, xu.shape[0] - 2)
    j = i + 1
    x0, x1, y0, y1 = xu[i], xu[j], yu[i], yu[j]
    out = y0 + (y1 - y0) * ((v - x0) / (x1 - x0))
    out = np.where(v == x1, y1, np.where(v == x0, y0, out))
    out = np.where(v < xu[0], yu[0], out)
    return np.where(v > xu[-1], yu[-1], out)


# ----------------------------------------------------------------------------------------- voom


def _as_vector(value, n: int, name: str) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SlamjaxInputError(f"{name}: must be numeric, one value per individual (length {n})") from None
    if v.ndim != 1 or v.shape[0] != n:
        raise SlamjaxInputError(
            f"{name}: must have one value per individual (the rows of counts): length {n}, got shape {v.shape}"
        )
    if not np.isfinite(v).all() or (v <= 0).any():
        raise SlamjaxInputError(f"{name}: must be finite and > 0 for every individual; drop or fix the offending ones")
    return v


def _check_inputs(counts, design, lib_size, norm_factors, span):
    try:
        C = np.asarray(counts, dtype=float)
    except (TypeError, ValueError):
        raise SlamjaxInputError("counts: must be a numeric (n individuals x g genes) array or DataFrame") from None
    if C.ndim != 2:
        raise SlamjaxInputError(f"counts: must be 2-d (n individuals x g genes), got shape {C.shape}")
    n, g = C.shape
    if g < 2:
        raise SlamjaxInputError(
            f"counts: need at least two genes (columns) to fit a mean-variance trend, got {g}; "
            "counts has individuals as rows and genes as columns (transpose a genes x samples table)"
        )
    if not np.isfinite(C).all():
        raise SlamjaxInputError("counts: contains NaN or inf; counts must be finite (fill or drop those genes)")
    if (C < 0).any():
        raise SlamjaxInputError("counts: contains negative values; read counts must be >= 0")
    if (C != np.round(C)).any():
        raise SlamjaxInputError(
            "counts: contains non-integer values; voom needs raw read counts (not cpm, TPM or log values)"
        )
    try:
        X = np.asarray(design, dtype=float)
    except (TypeError, ValueError):
        raise SlamjaxInputError("design: must be a numeric (n individuals x b) matrix") from None
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] != n:
        raise SlamjaxInputError(
            f"design: must have one row per individual (the rows of counts, {n}), got shape {X.shape}; "
            "counts has individuals as rows and genes as columns (transpose a genes x samples table)"
        )
    if not np.isfinite(X).all():
        raise SlamjaxInputError("design: contains NaN or inf")
    b = X.shape[1]
    if n < b + 1:
        raise SlamjaxInputError(
            f"design: needs more rows (individuals, {n}) than columns ({b}) to leave residual degrees "
            "of freedom; drop columns of the design or add individuals"
        )
    if np.linalg.matrix_rank(X) < b:
        raise SlamjaxInputError(
            f"design: is rank deficient (rank {np.linalg.matrix_rank(X)} < {b} columns); drop the "
            "redundant (collinear) columns"
        )
    if lib_size is None:
        lib = C.sum(axis=1)
        if (lib <= 0).any():
            bad = np.flatnonzero(lib <= 0)
            raise SlamjaxInputError(
                f"counts: individuals {bad.tolist()} (rows) have no reads, so lib_size is not positive; drop them"
            )
    else:
        lib = _as_vector(lib_size, n, "lib_size")
    if norm_factors is not None:
        lib = lib * _as_vector(norm_factors, n, "norm_factors")
    if not (np.isfinite(span) and 0 < span <= 1):
        raise SlamjaxInputError(f"span: must be in (0, 1], got {span}")
    if ((C > 0).any(axis=0)).sum() < 2:
        raise SlamjaxInputError("counts: need at least two genes with a nonzero count to fit the trend")
    return C, X, lib


def voom_weights(
    counts: np.ndarray | pd.DataFrame,
    design: np.ndarray | pd.DataFrame,
    lib_size: np.ndarray | None = None,
    norm_factors: np.ndarray | None = None,
    span: float = 0.5,
) -> VoomWeights:
    """limma's ``voom``: log2-cpm values and their precision weights (see the module docstring).

    ``counts`` is n individuals x g genes (integers >= 0; a numpy array or a pandas DataFrame, in
    which case ``logcpm`` and ``weights`` come back as DataFrames with its index and columns);
    ``design`` n x b of full column rank with n >= b + 1. ``lib_size`` defaults to the row sums of
    ``counts`` (limma's ``colSums``: the genes given, so filter genes first if limma was given
    filtered counts); ``norm_factors`` (e.g. TMM) multiply it, as a DGEList's do. Raises
    ``SlamjaxInputError`` on bad input before computing anything.
    """
    C, X, lib = _check_inputs(counts, design, lib_size, norm_factors, span)
    n, g = C.shape
    y = np.log2((C + 0.5) / (lib[:, None] + 1.0) * 1e6)

    # Every gene's least-squares fit at once: effects = Q' y with the complete QR of the design.
    b = X.shape[1]
    Q, _ = np.linalg.qr(X, mode="complete")
    effects = Q.T @ y
    fitted = Q[:, :b] @ effects[:b]
    sigma = np.sqrt(np.mean(effects[b:] ** 2, axis=0))  # sqrt(RSS / (n - b))

    sx = y.mean(axis=0) + np.mean(np.log2(lib + 1.0)) - np.log2(1e6)
    sy = np.sqrt(sigma)
    used = C.sum(axis=0) > 0  # limma leaves all-zero genes out of the trend
    trend_x, trend_y = lowess(sx[used], sy[used], f=span)

    fitted_count = 1e-6 * 2.0**fitted * (lib[:, None] + 1.0)
    w = 1.0 / _approx_rule2(trend_x, trend_y, np.log2(fitted_count)) ** 4

    if isinstance(counts, pd.DataFrame):
        logcpm_out = pd.DataFrame(y, index=counts.index.copy(), columns=counts.columns.copy())
        weights_out = pd.DataFrame(w, index=counts.index.copy(), columns=counts.columns.copy())
        lib_out = pd.Series(lib, index=counts.index.copy(), name="lib_size")
    else:
        logcpm_out, weights_out, lib_out = y, w, lib
    return VoomWeights(
        logcpm=logcpm_out, weights=weights_out, lib_size=lib_out, sx=sx, sy=sy, trend_x=trend_x, trend_y=trend_y
    )
