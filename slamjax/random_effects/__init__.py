"""Random-effect backends: fixed decompositions and the draws that use them."""

from .eigen import EigenRandomEffect as EigenRandomEffect, eigen_random_effect as eigen_random_effect
