"""The image networks of a run: the NCSN++ transport map and the convolutional potential of an ``ImageConfig``."""

from __future__ import annotations

from ..presets import ImageConfig
from .ncsnpp import TransportMap
from .potential import Potential


def build_networks(cfg: ImageConfig) -> tuple[TransportMap, Potential]:
    """``(transport_map, potential)`` for ``cfg``: the map :math:`T(x, z)` with ``cfg.net`` at ``cfg.image_size`` and
    ``cfg.channels``, and the potential :math:`v(y)` of kind ``cfg.net.potential`` and width
    ``cfg.net.potential_channels``. Both are created on the current default device (``with torch.device("meta")``
    counts parameters without allocating them)."""
    net = cfg.net
    transport_map = TransportMap(net, cfg.image_size, cfg.channels)
    potential = Potential(cfg.channels, net.potential_channels, net.potential, net.fir_kernel)
    return transport_map, potential
