"""Everything the sweep needs that does not change between iterations, as one pytree.

Arrays are in the rotated coordinates of the random-effect backend. Two models with the same
shapes and the same static settings share compiled code: hyperparameters are leaves, not constants.
"""

from __future__ import annotations

import equinox as eqx
from jaxtyping import Array, Float

from .blocks.trait_groups import MissingGroups
from .observation._base import ObservationModel
from .priors._base import CoefficientPrior
from .markers._data import MarkerData
from .random_effects.cholesky import CholeskyRandomEffects
from .random_effects.eigen import EigenRandomEffect
from .random_effects.woodbury import WoodburyRandomEffects

__all__ = ["SamplerData"]


class SamplerData(eqx.Module):
    re: EigenRandomEffect | CholeskyRandomEffects | WoodburyRandomEffects
    X: Float[Array, "n b"]  # rotated; column 0 is the intercept
    X_F: Float[Array, "n bF"]  # rotated
    Y_start: Float[Array, "n p"]  # standardised starting latent traits, 0 where unknown (original coordinates)
    observation: ObservationModel  # the link: its data in the data's units, original coordinates
    Y_mean: Float[Array, " p"]  # latent traits in the data's units = Y_mean + Y_scale * standardised
    Y_scale: Float[Array, " p"]
    h2_grid: Float[Array, "G R"]  # variance proportions of every grid point (rows sum < 1)
    trait_log_prior: Float[Array, " G"]
    factor_log_prior: Float[Array, " G"]
    Lambda_prior: CoefficientPrior
    B_prior: CoefficientPrior
    B_F_prior: CoefficientPrior
    tau_shape: Float[Array, ""]
    tau_rate: Float[Array, ""]
    F_tau_shape: Float[Array, ""]
    F_tau_rate: Float[Array, ""]
    intercept_precision: Float[Array, ""]
    n_factors: int = eqx.field(static=True)
    n_flat: int = eqx.field(static=True)
    groups: MissingGroups | None = None  # missing-data groups; None: every missing cell imputed
    collapsed_h2: bool = eqx.field(static=True, default=True)  # h2 drawn marginal over beta and tau
    rotate_factors: bool = eqx.field(static=True, default=True)  # step 0: draw the factors' rotation
    shear_factors: bool = eqx.field(static=True, default=False)  # step 0 also draws shears of the factors
    # steps 5l and 5m (blocks/marginal_factors.py), marginal over U_F (eigen backend, no missing-data groups)
    marginal_factor_h2: bool = eqx.field(static=True, default=False)
    # step 0e (blocks/exchange.py), marginal over F_l, U_R and U_F (eigen backend, no missing-data groups)
    exchange_factors: bool = eqx.field(static=True, default=False)
    # step 0e's second move (blocks/exchange.py): each factor's loadings against their shrinkage scale
    rescale_factors: bool = eqx.field(static=True, default=False)
    # step 0o (blocks/order.py): neighbouring factors swap places with their column shrinkage
    swap_factors: bool = eqx.field(static=True, default=False)
    markers: MarkerData | None = None  # marker effects of the factors (``slamjax.markers``)

    @property
    def latent_is_data(self) -> bool:
        """True when the latent traits are the (complete, Gaussian) data: step 9 never runs."""
        return self.observation.latent_is_data

    @property
    def shapes(self) -> dict[str, int]:
        n, p = self.Y_start.shape
        return dict(n=n, p=p, k=self.n_factors, b=self.X.shape[1], b_F=self.X_F.shape[1], r=self.re.r)
