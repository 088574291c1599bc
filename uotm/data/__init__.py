"""Data: toy distributions and image data sets."""

from .images import DATASET_NAMES, BatchOrder, FolderImages, ImageDataset, TensorImages, batches, make_dataset
from .toy import TOY_NAMES, ToyDistribution, load_point_cloud, make_distribution, resolve_pair

__all__ = ["TOY_NAMES", "ToyDistribution", "load_point_cloud", "make_distribution", "resolve_pair",
           "DATASET_NAMES", "BatchOrder", "FolderImages", "ImageDataset", "TensorImages", "batches", "make_dataset"]
