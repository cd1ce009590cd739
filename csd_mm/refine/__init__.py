"""Refinement of CAMs into pseudo masks (WSSS step 2): dense CRF, PSA affinity random walk, IRN boundary random
walk, the unrefined seeds; pseudo-mask export and mask mIoU."""
from .affinity import (affinity_labels, affinity_loss, affinity_matrix, feature_affinity, pair_indices,
                       random_walk, random_walk_refine, search_offsets, transition_matrix)
from .affinity_dataset import AffinityLabelDataset
from .affinity_net import AffinityNet
from .affinity_refiner import AffinityRandomWalkRefiner
from .boundary_affinity import boundary_affinity, boundary_random_walk, line_path, line_paths
from .boundary_net import BoundaryNet
from .boundary_refiner import IRNBoundaryRefiner
from .crf import DenseCRFRefiner, cam_label_scores, confident_regions, crf_refine_cam, dense_crf
from .pseudo_masks import build_refiner, export_pseudo_masks, mask_miou
from .seed_refiner import SeedRefiner

__all__ = [
    'affinity_labels', 'affinity_loss', 'affinity_matrix', 'feature_affinity', 'pair_indices', 'random_walk',
    'random_walk_refine', 'search_offsets', 'transition_matrix', 'AffinityLabelDataset', 'AffinityNet',
    'AffinityRandomWalkRefiner', 'boundary_affinity', 'boundary_random_walk', 'line_path', 'line_paths',
    'BoundaryNet', 'IRNBoundaryRefiner', 'DenseCRFRefiner', 'cam_label_scores', 'confident_regions',
    'crf_refine_cam', 'dense_crf', 'build_refiner', 'export_pseudo_masks', 'mask_miou', 'SeedRefiner'
]
