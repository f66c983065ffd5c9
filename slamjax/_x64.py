"""float64 for slamjax's own computations, without changing the user's JAX settings.

slamjax computes in float64 (fixed decompositions, Gibbs sweeps, recorded draws) by default. Rather
than switching ``jax_enable_x64`` on for the whole process, every public entry point that creates or
runs JAX arrays (``Model(...)``, ``sample``, ``open_run``, ``Run`` construction, ``resume`` and
``predict``, ``cross_validate``, the start and warm-up helpers, the command line) runs inside
``jax.enable_x64(True)``: a thread-local setting, restored when the call returns or raises, which
JAX's compilation caches key on (code compiled for slamjax is never reused in float32 or the
reverse). Other threads, and the caller's own JAX code before and after, keep their setting.

A run may ask for float32 sweeps instead (``sj.sample(..., dtype="float32")``, for GPUs;
``slamjax._dtype``). It still runs inside this context: its sampler data and chain states are
cast to float32 and everything a sweep computes from them stays float32, while the fixed
decompositions are computed in float64 (then cast) and the recorded draws come back as NumPy
float64.

Arrays that slamjax holds (``model.data``, ``run.final_states``) are float64 JAX arrays
(``run.final_states`` float32 after a float32 run): slamjax's own methods re-enter the context
before using them; code of the user's that computes with them should do the same
(``with jax.enable_x64(True): ...``), otherwise JAX computes in float32 (with a warning). Recorded
draws (``run.draws``, ``run.posterior``) are NumPy float64 arrays and need nothing. User callbacks
(``sj.sample(callback=...)``) run under the caller's own setting.
"""

from __future__ import annotations

import functools
import threading

import jax

from ._lowering import unrolled_threefry

__all__ = ["float64", "call_as_user"]

_callers = threading.local()  # the caller's own x64 setting while slamjax runs, per thread


def float64(function):
    """``function`` run inside ``jax.enable_x64(True)``, remembering the caller's setting for
    ``call_as_user``; nested slamjax calls keep the outermost caller's. What it compiles lowers
    Threefry unrolled on the CPU (``_lowering.unrolled_threefry``: the same bits, a faster compile)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        outermost = getattr(_callers, "x64", None) is None
        if outermost:
            _callers.x64 = bool(jax.config.jax_enable_x64)
        try:
            with jax.enable_x64(True), unrolled_threefry():
                return function(*args, **kwargs)
        finally:
            if outermost:
                _callers.x64 = None

    return wrapper


def call_as_user(function, *args, **kwargs):
    """``function(*args, **kwargs)`` under the x64 setting of the code that called slamjax."""
    x64 = getattr(_callers, "x64", None)
    if x64 is None:
        return function(*args, **kwargs)
    with jax.enable_x64(x64):
        return function(*args, **kwargs)
