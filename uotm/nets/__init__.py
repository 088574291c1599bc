"""Networks: the toy MLPs (:mod:`uotm.nets.toy`, S-JKO's latent-free map among them), the image networks (the NCSN++
transport map, the convolutional potentials) and the Wasserstein auto-encoder's encoders, decoders and latent
discriminator (:mod:`uotm.nets.wae`)."""

from .image import build_networks
from .ncsnpp import TransportMap
from .potential import Potential
from .toy import LatentFreeMap, ResidualMLP, ToyMap, ToyPotential

__all__ = ["ResidualMLP", "ToyMap", "ToyPotential", "LatentFreeMap", "TransportMap", "Potential", "build_networks"]
