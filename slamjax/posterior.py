"""What is recorded from each draw, and the derived quantities G, R, P, h2 and genetic values.

On the device, draws are recorded on the standardised scale with the factor expansion divided out:
    Lambda* = Lambda / sqrt(tot_F_prec),  B_F* = B_F sqrt(tot_F_prec)
(the priors sit on the expanded Lambda and B_F: Lambda* has its prior times a per-factor scale
mixture, Lambda*_hj | P, tau ~ N(0, 1 / (tau_j P_hj tot_F_prec_h)) with tot_F_prec_h from its
Gamma prior; B_F* has exactly its ARD prior; tests/test_recorded_prior.py)
    G_m = Lambda*' diag(F_h2_m) Lambda* + diag(resid_h2_m / tau)            (one per random effect m)
    R = Lambda*' diag(1 - sum_m F_h2_m) Lambda* + diag((1 - sum_m resid_h2_m) / tau)
    P = sum_m G_m + R,   h2_m = diag(G_m) / diag(P)
Big quantities (G and R when p is large, genetic values U, fitted values Eta_mean) are only
averaged on the device; G and R, whose (R + 1) p^2 k multiply-adds outgrow a sweep at large p, are
averaged over every m-th draw (``record_function``; ``_records.py`` chooses m by size). Genetic
values U = U_F Lambda + U_R on the levels of K, and G and R, are kept per draw too on request
(``record_function``). ``to_original_scale`` undoes the trait standardisation on the host.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from ._sampler_data import SamplerData
from .state import State

__all__ = [
    "record_function",
    "running_template",
    "to_original_scale",
]


def _covariances(state: State, data: SamplerData):
    """The genetic covariance of every random effect (R, p, p) and the residual R: (R + 1) p^2 k
    multiply-adds."""
    Lambda_star = _loadings(state)
    h2 = data.h2_grid[state.resid_h2_index]  # (p, R)
    F_h2 = data.h2_grid[state.F_h2_index]  # (k, R)
    G = jnp.einsum("kp,kr,kq->rpq", Lambda_star, F_h2, Lambda_star) + jax.vmap(jnp.diag)(
        h2.T / state.tot_Eta_prec[None, :]
    )
    residual = 1.0 - jnp.sum(h2, axis=1)
    F_residual = 1.0 - jnp.sum(F_h2, axis=1)
    R = (Lambda_star.T * F_residual[None, :]) @ Lambda_star + jnp.diag(residual / state.tot_Eta_prec)
    return G, R


def _loadings(state: State):
    """Lambda* = Lambda / sqrt(tot_F_prec): the loadings with the factors' expansion divided out."""
    return state.Lambda * jnp.sqrt(1.0 / state.tot_F_prec)[:, None]


def _variances(state: State, data: SamplerData):
    """diag(G_m) (R, p) and diag(P) (p): O(kp), without forming G."""
    squares = _loadings(state) ** 2  # (k, p)
    h2 = data.h2_grid[state.resid_h2_index]  # (p, R)
    F_h2 = data.h2_grid[state.F_h2_index]  # (k, R)
    diag_G = F_h2.T @ squares + h2.T / state.tot_Eta_prec[None, :]
    diag_P = jnp.sum(squares, axis=0) + 1.0 / state.tot_Eta_prec
    return diag_G, diag_P


def _procrustes(reference, Lambda):
    """The orthogonal T (k, k) that brings Lambda (k, p) closest to ``reference``: argmin over
    orthogonal T of ||reference - T Lambda||_F = U V' for reference Lambda' = U S V'."""
    U, _, Vt = jnp.linalg.svd(reference @ Lambda.T)
    return U @ Vt


def _add_large_means(state: State, data: SamplerData, sums: dict, aligned: bool) -> dict:
    """Adds one draw's G (R, p, p) and R (p, p) to their running sums, and with ``aligned`` the
    draw's Lambda*, F_h2 and B_F* rotated onto the running sum of Lambda* (Procrustes: T Lambda*,
    diag(T diag(F_h2_m) T') and B_F* T', as ``slamjax.alignment`` transforms a draw)."""
    G, R = _covariances(state, data)
    sums = {**sums, "G": sums["G"] + G, "R": sums["R"] + R}
    if aligned:
        Lambda_star = _loadings(state)
        first = jnp.all(sums["Lambda_aligned"] == 0.0)  # the first draw sets the frame
        T = jnp.where(first, jnp.eye(Lambda_star.shape[0]), _procrustes(sums["Lambda_aligned"], Lambda_star))
        F_h2 = data.h2_grid[state.F_h2_index]  # (k, R)
        B_F_star = state.B_F * jnp.sqrt(state.tot_F_prec)[None, :]
        sums = {**sums, "Lambda_aligned": sums["Lambda_aligned"] + T @ Lambda_star,
                "F_h2_aligned": sums["F_h2_aligned"] + (T**2 @ F_h2).T,
                "B_F_aligned": sums["B_F_aligned"] + B_F_star @ T.T}
    return sums


def _record(state: State, data: SamplerData, with_covariances: bool, with_genetic_values: bool = False,
            with_loadings: bool = True):
    """Recorded quantities and running-mean terms (G and R apart: ``_add_large_means``); with one
    random effect the effect axis is dropped."""
    Lambda_star = _loadings(state)
    single = data.h2_grid.shape[1] == 1
    squeeze = (lambda x: x[0]) if single else (lambda x: x)
    diag_G, diag_P = _variances(state, data)
    draws = {
        "B": state.B,
        "B_F": state.B_F * jnp.sqrt(state.tot_F_prec)[None, :],
        "h2": squeeze(diag_G / diag_P[None, :]),
        "resid_h2": squeeze(data.h2_grid[state.resid_h2_index].T),
        "F_h2": squeeze(data.h2_grid[state.F_h2_index].T),
        "tot_Eta_prec": state.tot_Eta_prec,
    }
    if with_loadings:
        draws["Lambda"] = Lambda_star
    if with_covariances:
        G, R = _covariances(state, data)
        draws["G"], draws["R"] = squeeze(G), R
    draws.update(data.observation.records(state.obs))  # the link's own parameters (data's units)
    U = state.U_R + state.U_F @ state.Lambda  # backend coordinates; the expansion cancels
    if with_genetic_values:
        draws["U"] = data.re.to_levels(U)  # (levels of every K stacked, p)
    running = {
        "U": U,
        "Eta_mean": data.X @ state.B + state.F @ state.Lambda + data.re.effect_on_rows(state.U_R),
    }
    if data.markers is not None:
        marker_draws, marker_running = _marker_records(state, data, Lambda_star, diag_P)
        draws.update(marker_draws)
        running.update(marker_running)
    return draws, running


# marker effects are kept per draw up to this many (markers x factors); beyond, only their mean
MARKER_DRAWS_MAX = 200_000
# a factor counts as acting on a trait when it explains at least this share of the trait's variance
TRAIT_PIP_MIN_SHARE = 0.01
# per-trait effects and inclusion probabilities are averaged up to this many markers x traits
TRAIT_PIP_MAX = 20_000_000


def marker_record_names(m: int, k: int, p: int, spike: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(per-draw names, running-mean names) of the marker records of a model of this size."""
    draws = ("B_M",) if m * k <= MARKER_DRAWS_MAX else ()
    by_trait = m * p <= TRAIT_PIP_MAX
    running = ["marker_trait_effect"] if by_trait else []
    if spike:
        running += ["marker_pip", "window_pip"] + (["marker_trait_pip"] if by_trait else [])
    return draws, tuple(running)


def _marker_records(state: State, data: SamplerData, Lambda_star, diag_P):
    """Marker effects B_M* = B_M sqrt(tot_F_prec) (the expansion divided out, like B_F*), the
    running mean of their effects on the traits B_M* Lambda* (standardised scale), and for
    spike-and-slab priors the running inclusion indicators: per marker and factor (B_M != 0), per
    window and factor (any marker of the window included), and per marker and trait (included on
    a factor that explains at least TRAIT_PIP_MIN_SHARE of the trait's variance)."""
    markers = data.markers
    m, k = state.markers.B_M.shape
    p = Lambda_star.shape[1]
    B_M = state.markers.B_M * jnp.sqrt(state.tot_F_prec)[None, :]
    names, running_names = marker_record_names(m, k, p, markers.prior.spike)
    draws = {"B_M": B_M} if "B_M" in names else {}
    running = {"marker_trait_effect": B_M @ Lambda_star} if "marker_trait_effect" in running_names else {}
    if markers.prior.spike:
        included = (state.markers.classes > 0).astype(B_M.dtype)
        running["marker_pip"] = included
        running["window_pip"] = jax.ops.segment_max(included, markers.window_index, num_segments=markers.n_windows)
        if "marker_trait_pip" in running_names:
            acts = (Lambda_star**2 >= TRAIT_PIP_MIN_SHARE * diag_P[None, :]).astype(B_M.dtype)  # (k, p)
            running["marker_trait_pip"] = (included @ acts > 0).astype(B_M.dtype)
    return draws, running


@functools.lru_cache(maxsize=64)
def record_function(covariances: bool, genetic_values: bool, extra: tuple = (), loadings: bool = True,
                    covariance_every: int = 1):
    """The record function ``fn(state, data, sums, draw) -> (draws, sums)`` for these options: the
    quantities kept per draw, and the running sums (``running_template``) with this draw added.
    ``draw`` is the draw's index in the run. The same function object for the same options, so
    that the compiled ``run_draws`` (which takes it as a static argument) is reused between runs.

    ``covariances``: keep every draw of G and R; ``genetic_values``: of U = U_F Lambda + U_R on the
    levels of every K (``draws["U"]``, levels of every K stacked x p); ``loadings``: of Lambda*.
    Without ``loadings`` the running means of the aligned Lambda*, F_h2 and B_F* are kept instead.
    G and R (and those aligned means) are added at the draws whose index is a multiple of
    ``covariance_every`` only (a real branch: ``draw`` is the same for every chain).
    ``extra``: ((name, fn), ...) user functions ``fn(state, data) -> array`` recorded per draw.
    """
    def record(state, data, sums, draw):
        draws, running = _record(state, data, bool(covariances), bool(genetic_values), bool(loadings))
        draws = {**draws, **{name: jnp.asarray(fn(state, data)) for name, fn in extra}}
        sums = {**sums, **{name: sums[name] + value for name, value in running.items()}}
        large = [name for name in sums if name in _LARGE_MEANS]
        add = lambda st, su: _add_large_means(st, data, su, not loadings)  # noqa: E731
        if covariance_every == 1:
            large_sums = add(state, {name: sums[name] for name in large})
        else:
            large_sums = lax.cond(draw % covariance_every == 0, add, lambda st, su: su, state,
                                  {name: sums[name] for name in large})
        return draws, {**sums, **large_sums}

    return record


# running means averaged over every covariance_every-th draw
_LARGE_MEANS = ("G", "R", "Lambda_aligned", "F_h2_aligned", "B_F_aligned")


def running_template(data: SamplerData, loadings: bool = True) -> dict[str, jnp.ndarray]:
    """Zero running sums of one chain; without per-draw ``loadings``, those of the aligned
    Lambda* (k, p), F_h2 (R, k) and B_F* (b_F, k) too."""
    s = data.shapes
    n, p, r, k = s["n"], s["p"], s["r"], s["k"]
    aligned = {} if loadings else {
        "Lambda_aligned": jnp.zeros((k, p)), "F_h2_aligned": jnp.zeros((data.h2_grid.shape[1], k)),
        "B_F_aligned": jnp.zeros((s["b_F"], k)),
    }
    return {
        "G": jnp.zeros((data.h2_grid.shape[1], p, p)),
        "R": jnp.zeros((p, p)),
        "U": jnp.zeros((r, p)),
        "Eta_mean": jnp.zeros((n, p)),
        **aligned,
        **_marker_running_template(data),
    }


def _marker_running_template(data: SamplerData) -> dict:
    if data.markers is None:
        return {}
    m, k, p = data.markers.m, data.n_factors, data.shapes["p"]
    _, names = marker_record_names(m, k, p, data.markers.prior.spike)
    shapes = {"marker_trait_effect": (m, p), "marker_pip": (m, k), "window_pip": (data.markers.n_windows, k),
              "marker_trait_pip": (m, p)}
    return {name: jnp.zeros(shapes[name]) for name in names}


def to_original_scale(name: str, values: np.ndarray, Y_mean: np.ndarray, Y_scale: np.ndarray) -> np.ndarray:
    """Undoes the trait standardisation of a recorded quantity (traits on the last axis)."""
    if name in ("G", "R", "P"):
        return values * np.outer(Y_scale, Y_scale)
    if name in ("Lambda", "U"):
        return values * Y_scale
    if name == "B":
        out = values * Y_scale
        out[..., 0, :] += Y_mean
        return out
    if name == "Eta_mean":
        return values * Y_scale + Y_mean
    if name == "tot_Eta_prec":
        return values / Y_scale**2
    return values
