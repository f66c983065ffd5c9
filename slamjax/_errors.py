"""Exceptions: bad input (raised before any JAX code runs) and numerical failures of the sampler."""


class SlamjaxInputError(ValueError):
    """Bad input to a slamjax function: the message names the argument, the problem and the fix."""


class NumericalError(FloatingPointError):
    """A block of the sampler produced non-finite values (or a factorisation failed).

    The message names the block, the sweep and the chain; so do the attributes ``block`` (the
    first failing block of that sweep), ``blocks`` (all of them, in sweep order), ``sweep``
    (counted from 1) and ``chain`` (counted from 0, as ``run.posterior``'s chain coordinate).
    """

    def __init__(self, message: str, *, block: str = "", blocks: tuple = (), sweep: int = 0, chain: int = 0):
        super().__init__(message)
        self.block, self.blocks, self.sweep, self.chain = block, tuple(blocks), sweep, chain
