"""Datasets of the refinement stage (mmseg's ``DATASETS``): images with PSA's confident label maps."""
from .affinity_label_dataset import AffinityLabelDataset

__all__ = ['AffinityLabelDataset']
