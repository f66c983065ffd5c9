"""Random-effect backends: fixed decompositions and the draws that use them.

Both follow one protocol: ``rotate``/``unrotate`` (the coordinates the sampler works in),
``regression_statistics``, ``h2_log_likelihood``, ``sample_effects``, ``effect_on_rows``,
``effect_prior_sd``, ``residual_proportion``, ``to_levels`` and ``sizes``.
"""

from .cholesky import (
    CholeskyRandomEffects as CholeskyRandomEffects,
)
from .cholesky import (
    cholesky_random_effects as cholesky_random_effects,
)
from .cholesky import (
    memory_estimate as memory_estimate,
)
from .eigen import EigenRandomEffect as EigenRandomEffect
from .eigen import eigen_random_effect as eigen_random_effect
from .woodbury import WoodburyRandomEffects as WoodburyRandomEffects
from .woodbury import woodbury_random_effects as woodbury_random_effects
from ._plan import RandomEffectsPlan as RandomEffectsPlan
from ._plan import plan_random_effects as plan_random_effects
