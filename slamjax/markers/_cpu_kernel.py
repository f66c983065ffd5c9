"""The single-site marker scan compiled for the CPU (numba), called from XLA through its typed FFI.

Why: inside an XLA:CPU while loop every operation of a marker's update is a separate thunk, so a
site costs 3-5 microseconds whatever its arithmetic (k = 20 factors, a few classes); compiled as
one loop it costs a fraction of that. The scan is the same as ``sampler.sample_single_site``'s
JAX path, site for site and with the same noise (``z`` standard normal per effect, ``gumbel``
standard Gumbel per effect and class), so the two agree up to rounding
(tests/test_markers.py checks it).

The handler follows XLA's FFI C ABI (``xla/ffi/api/c_api.h``, shipped with jaxlib): it answers the
metadata query with the API version of those headers, reads the call frame's buffers and runs the
scan. Registered once per process, on first use; float64 only (the JAX path serves float32 and
accelerators). ``available()`` says whether it can be used here.
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["available", "single_site_scan"]

_TARGET = "slamjax_marker_single_site_f64"
N_ARGS, N_RETS = 12, 3


@functools.cache
def api_version() -> tuple[int, int]:
    """(major, minor) of the FFI headers shipped with the installed jaxlib."""
    try:
        text = open(f"{jax.ffi.include_dir()}/xla/ffi/api/c_api.h").read()
        major = int(re.search(r"#define XLA_FFI_API_MAJOR (\d+)", text).group(1))
        minor = int(re.search(r"#define XLA_FFI_API_MINOR (\d+)", text).group(1))
        return major, minor
    except (OSError, AttributeError):
        return 0, 1


@functools.cache
def _registered() -> bool:
    try:
        from ._cpu_kernel_numba import _handler
    except ImportError:  # numba missing: the JAX path serves
        return False
    import ctypes

    new_capsule = ctypes.pythonapi.PyCapsule_New
    new_capsule.restype = ctypes.py_object
    new_capsule.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)
    jax.ffi.register_ffi_target(_TARGET, new_capsule(_handler.address, b"xla._CUSTOM_CALL_TARGET", None), platform="cpu")
    return True


def available(dtype=jnp.float64) -> bool:
    """True where the compiled scan can run: the default backend is the CPU, the arrays are float64
    and numba is installed."""
    return jax.default_backend() == "cpu" and jnp.dtype(dtype) == jnp.float64 and _registered()


def single_site_scan(Mt, gram, effects, classes, residual, w, tau, precision, log_pi, z, gumbel, spike: bool):
    """One systematic scan over the markers (``sampler.sample_single_site``) by the compiled kernel.
    Returns (effects, classes, residual)."""
    if not _registered():
        raise RuntimeError("the compiled marker scan needs numba (pip install numba)")
    out = (jax.ShapeDtypeStruct(effects.shape, effects.dtype), jax.ShapeDtypeStruct(classes.shape, jnp.int32),
           jax.ShapeDtypeStruct(residual.shape, residual.dtype))
    flag = jnp.asarray([1.0 if spike else 0.0], effects.dtype)
    call = jax.ffi.ffi_call(_TARGET, out, vmap_method="sequential")
    return call(Mt, gram, effects, classes.astype(jnp.int32), residual, w, tau, precision, log_pi, z, gumbel, flag)
