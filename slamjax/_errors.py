"""Exceptions raised for bad input, before any JAX code runs."""


class SlamjaxInputError(ValueError):
    """Bad input to a slamjax function: the message names the argument, the problem and the fix."""


class NumericalError(FloatingPointError):
    """A factorisation failed (matrix not positive definite): the message names the block."""
