"""Networks: the toy MLPs and the image networks (the NCSN++ transport map, the convolutional potentials)."""

from .image import build_networks
from .ncsnpp import TransportMap
from .potential import Potential
from .toy import ResidualMLP, ToyMap, ToyPotential

__all__ = ["ResidualMLP", "ToyMap", "ToyPotential", "TransportMap", "Potential", "build_networks"]
