"""Refinement of CAMs into pseudo masks (WSSS step 2), one folder per kind of part:

* :mod:`~csd_mm.refine.functional`: pure maths (dense-CRF wrappers, PSA pair affinities and random walk, IRN
  boundary affinities);
* :mod:`~csd_mm.refine.models`: the networks (PSA's AffinityNet, IRN's BoundaryNet; mmseg ``MODELS``);
* :mod:`~csd_mm.refine.datasets`: PSA's confident-label dataset that trains them (mmseg ``DATASETS``);
* :mod:`~csd_mm.refine.refiners`: CAMs of one image -> pseudo mask (seeds, dense CRF, PSA / IRN random walks;
  :data:`csd_mm.registry.REFINERS`);
* :mod:`~csd_mm.refine.pseudo_masks`: the pseudo-mask exporter and the mask mIoU.

The public names of the subpackages are re-exported here (``from csd_mm.refine import DenseCRFRefiner``).
"""
from .datasets import AffinityLabelDataset
from .functional import (affinity_labels, affinity_loss, affinity_matrix, boundary_affinity, boundary_random_walk,
                         cam_label_scores, confident_regions, crf_refine_cam, dense_crf, feature_affinity, line_path,
                         line_paths, pair_indices, random_walk, random_walk_refine, search_offsets, transition_matrix)
from .models import AffinityNet, BoundaryNet
from .pseudo_masks import export_pseudo_masks, mask_miou
from .refiners import (AffinityRandomWalkRefiner, DenseCRFRefiner, IRNBoundaryRefiner, SeedRefiner,
                       build_refiner)

__all__ = [
    'affinity_labels', 'affinity_loss', 'affinity_matrix', 'feature_affinity', 'pair_indices', 'random_walk',
    'random_walk_refine', 'search_offsets', 'transition_matrix', 'AffinityLabelDataset', 'AffinityNet',
    'AffinityRandomWalkRefiner', 'boundary_affinity', 'boundary_random_walk', 'line_path', 'line_paths',
    'BoundaryNet', 'IRNBoundaryRefiner', 'DenseCRFRefiner', 'cam_label_scores', 'confident_regions',
    'crf_refine_cam', 'dense_crf', 'build_refiner', 'export_pseudo_masks', 'mask_miou', 'SeedRefiner'
]
