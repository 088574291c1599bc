"""Data: toy distributions (and, later, image datasets)."""

from .toy import TOY_NAMES, ToyDistribution, load_point_cloud, make_distribution, resolve_pair

__all__ = ["TOY_NAMES", "ToyDistribution", "load_point_cloud", "make_distribution", "resolve_pair"]
