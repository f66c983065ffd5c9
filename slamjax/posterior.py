"""What is recorded from each draw, and the derived quantities G, R, P, h2 and genetic values.

On the device, draws are recorded on the standardised scale with the factor expansion divided out:
    Lambda* = Lambda / sqrt(tot_F_prec),  B_F* = B_F sqrt(tot_F_prec)
    G = Lambda*' diag(F_h2) Lambda* + diag(resid_h2 / tau)
    R = Lambda*' diag(1 - F_h2) Lambda* + diag((1 - resid_h2) / tau),  P = G + R,  h2 = diag(G) / diag(P)
Big quantities (G and R when p is large, genetic values U, fitted values Eta_mean) are only
averaged on the device. ``to_original_scale`` undoes the trait standardisation on the host.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ._sampler_data import SamplerData
from .state import State

__all__ = ["record_draw", "record_draw_with_covariances", "running_template", "to_original_scale"]


def _covariances(state: State, data: SamplerData):
    Lambda_star = state.Lambda * jnp.sqrt(1.0 / state.tot_F_prec)[:, None]
    h2 = data.h2_values[state.resid_h2_index]
    F_h2 = data.h2_values[state.F_h2_index]
    G = (Lambda_star.T * F_h2[None, :]) @ Lambda_star + jnp.diag(h2 / state.tot_Eta_prec)
    R = (Lambda_star.T * (1.0 - F_h2)[None, :]) @ Lambda_star + jnp.diag((1.0 - h2) / state.tot_Eta_prec)
    return Lambda_star, G, R


def _record(state: State, data: SamplerData, with_covariances: bool):
    Lambda_star, G, R = _covariances(state, data)
    diag_G, diag_R = jnp.diag(G), jnp.diag(R)
    draws = {
        "Lambda": Lambda_star,
        "B": state.B,
        "B_F": state.B_F * jnp.sqrt(state.tot_F_prec)[None, :],
        "h2": diag_G / (diag_G + diag_R),
        "resid_h2": data.h2_values[state.resid_h2_index],
        "F_h2": data.h2_values[state.F_h2_index],
        "tot_Eta_prec": state.tot_Eta_prec,
    }
    if with_covariances:
        draws["G"], draws["R"] = G, R
    running = {
        "G": G,
        "R": R,
        "U": state.U_R + state.U_F @ state.Lambda,  # rotated coordinates; expansion cancels
        "Eta_mean": data.X @ state.B + state.F @ state.Lambda + data.re.effect_on_rows(state.U_R),
    }
    return draws, running


def record_draw(state: State, data: SamplerData):
    """Per-draw quantities (small ones) and running-mean quantities of one chain."""
    return _record(state, data, with_covariances=False)


def record_draw_with_covariances(state: State, data: SamplerData):
    """As ``record_draw``, keeping every draw of G and R too (for small p)."""
    return _record(state, data, with_covariances=True)


def running_template(data: SamplerData) -> dict[str, jnp.ndarray]:
    s = data.shapes
    n, p, r = s["n"], s["p"], s["r"]
    return {
        "G": jnp.zeros((p, p)),
        "R": jnp.zeros((p, p)),
        "U": jnp.zeros((r, p)),
        "Eta_mean": jnp.zeros((n, p)),
    }


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
