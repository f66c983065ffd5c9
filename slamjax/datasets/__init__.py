"""Bundled real data sets (with their citations) and a simulator of the model."""

from ._dataset import Dataset as Dataset
from ._simulate import (
    half_sib_relationship as half_sib_relationship,
    random_pedigree_relationship as random_pedigree_relationship,
    simulate as simulate,
)
from ._wheat import load_wheat as load_wheat
