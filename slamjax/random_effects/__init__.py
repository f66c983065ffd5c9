"""Random-effect backends: fixed decompositions and the draws that use them.

Three backends: ``eigen`` (one random effect, diagonal after one rotation), ``cholesky`` (any
number, one inverse Cholesky factor of V_g per grid point) and ``woodbury`` (two or more: the
largest effect diagonalised, the others a low-rank update). ``plan_random_effects`` chooses one
for a model, checks its memory and builds it. All three follow one protocol:

* coordinates: ``rotate``/``unrotate`` (the sampler works in ``rotate``'s coordinates), ``n``,
  ``r`` (entries of the effects) and ``sizes`` (levels of every random effect);
* statistics: ``regression_statistics`` (each column at its grid point),
  ``regression_statistics_grid`` (every grid point), ``quadratic_forms``, ``h2_log_likelihood``
  and ``log_det_V`` (every grid point);
* effects: ``sample_effects``, ``effect_on_rows``, ``effect_prior_sd``, ``residual_proportion``
  and ``to_levels`` (the effects on the levels of every K).
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
