"""Pure maths of the refiners: dense-CRF wrappers, PSA pair affinities and random walk, IRN boundary affinities."""
from .affinity import (affinity_labels, affinity_loss, affinity_matrix, confident_label_maps, feature_affinity,
                       pair_indices, pair_loss, random_walk, random_walk_refine, resize_labels,
                       search_offsets, transition_matrix)
from .boundary_affinity import boundary_affinity, boundary_random_walk, line_path, line_paths
from .crf import (cam_label_scores, combine_irn_confident, confident_regions, crf_refine_cam, dense_crf,
                  dense_crf_labels, irn_confident_regions)
from .stride_grid import grid_size, map_stride, pool_to_grid, upsample_from_grid

__all__ = [
    'affinity_labels', 'affinity_loss', 'affinity_matrix', 'confident_label_maps', 'feature_affinity',
    'pair_indices', 'pair_loss', 'random_walk', 'random_walk_refine', 'resize_labels',
    'search_offsets', 'transition_matrix', 'boundary_affinity', 'boundary_random_walk', 'line_path', 'line_paths',
    'cam_label_scores', 'combine_irn_confident', 'confident_regions', 'crf_refine_cam', 'dense_crf',
    'dense_crf_labels', 'irn_confident_regions', 'grid_size', 'map_stride',
    'pool_to_grid', 'upsample_from_grid'
]
