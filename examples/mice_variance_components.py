"""Worked example: variance components of 20 mouse traits with three random effects.

Heterogeneous-stock mice (Valdar et al. 2006, Nat Genet 38:879; data from the BGLR R package,
GPL-3): 1814 mice, 20 obesity and blood-biochemistry traits with missing cells (imputed),
sex and season as fixed effects, an animal effect with the pedigree relationship matrix,
and iid cage and litter effects (the cholesky backend).

    python examples/mice_variance_components.py [--warmup 300] [--samples 300] [--divisions 5]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import slamjax as sj  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description="mice: variance proportions per trait")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--divisions", type=int, default=5)
    args = parser.parse_args()
    ds = sj.datasets.load_mice(markers=False)
    model = sj.Model(
        Y=ds.Y, data=ds.data, formula="~ GENDER + season + (1|mouse) + (1|cage) + (1|Litter)",
        relmat={"mouse": ds.relmat["mouse"]}, n_factors=10, h2_divisions=args.divisions,
    )
    print(model)
    run = sj.sample(model, num_warmup=args.warmup, num_samples=args.samples, num_chains=1, seed=0)
    print(f"sampling took {run.elapsed:.0f} s")
    proportions = run.posterior_mean("h2")  # traits x (mouse, cage, Litter)
    proportions["residual"] = 1.0 - proportions.sum(axis=1)
    print("Posterior mean proportion of each trait's variance:")
    print(proportions.round(3).to_string())


if __name__ == "__main__":
    main()
