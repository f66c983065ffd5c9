"""How slamjax's random bits are compiled on the CPU: Threefry unrolled instead of rolled.

JAX lowers its Threefry-2x32 hash (every ``jax.random`` split, fold_in and draw) on the CPU as a
loop of 5 iterations of 4 rounds, to keep the program small. XLA:CPU compiles each such loop,
of which a sweep holds 56, as its own machine-code function: at n = 200, p = 20 LLVM's code
generation took 7.1 of the compile's 10.5 s with them and 3.3 s without. The unrolled form, which JAX
uses on every other platform, is plain elementwise arithmetic that XLA fuses with its neighbours.
It computes the same bits: tests/test_random.py compares the two programs' draws bit for bit and
the unrolled one with Threefry's known-answer vector.
Measured at n = 200, p = 20 (4 chains, ``benchmarks/compile_time.py``): XLA's compile of the
sampling loop takes 30 % less time, and a sweep costs the same.

``unrolled_threefry()`` switches the CPU rule for the duration of a ``with`` block and restores
the one it found (nested blocks are fine). slamjax's entry points enter it with their float64
context (``_x64.float64``), so a user's own JAX code outside slamjax's calls is compiled as
before. The rule table is process-wide: another thread lowering during a slamjax call gets the
unrolled form too, which computes the same bits. The switch reads JAX's two private rule tables; where a
JAX version names them otherwise it does nothing (the rolled loop is then compiled, correct and slower
to compile); ``active()`` says whether it can work.
"""

from __future__ import annotations

import contextlib

try:
    from jax.extend.random import threefry2x32_p
    from jax.interpreters import mlir
except ImportError:  # a JAX without these modules: the switch does nothing
    threefry2x32_p = mlir = None

__all__ = ["active", "unrolled_threefry"]


def _tables():
    """(JAX's rule for every platform, its CPU-only rules) or None where this JAX has other names."""
    if mlir is None:
        return None
    general = getattr(mlir, "_lowerings", None)
    specific = getattr(mlir, "_platform_specific_lowerings", None)
    if not isinstance(general, dict) or not isinstance(specific, dict) or not isinstance(specific.get("cpu"), dict):
        return None
    return general, specific["cpu"]


def active() -> bool:
    """True where ``unrolled_threefry`` can switch the rule with this JAX version."""
    tables = _tables()
    return tables is not None and threefry2x32_p in tables[0] and threefry2x32_p in tables[1]


@contextlib.contextmanager
def unrolled_threefry():
    """Threefry lowered unrolled on the CPU inside the block, the previous rule restored after."""
    if not active():
        yield
        return
    general, cpu = _tables()
    previous = cpu[threefry2x32_p]
    cpu[threefry2x32_p] = general[threefry2x32_p]  # the rule of every other platform: unrolled
    try:
        yield
    finally:
        cpu[threefry2x32_p] = previous
