"""Bundled real data sets (with their citations) and a simulator of the model."""

from ._dataset import Dataset as Dataset
from ._simulate import (
    half_sib_relationship as half_sib_relationship,
    random_pedigree_relationship as random_pedigree_relationship,
    simulate as simulate,
)
from ._bottomly import load_bottomly as load_bottomly, load_bottomly_voom as load_bottomly_voom
from ._grav2 import load_grav2 as load_grav2
from ._mice import load_mice as load_mice
from ._wheat import load_wheat as load_wheat
