"""Networks: the toy MLPs (and, later, the image networks)."""

from .toy import ResidualMLP, ToyMap, ToyPotential

__all__ = ["ResidualMLP", "ToyMap", "ToyPotential"]
