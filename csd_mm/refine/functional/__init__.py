"""Pure maths of the refiners: dense-CRF wrappers, PSA pair affinities and random walk, IRN boundary affinities."""
from .affinity import (affinity_labels, affinity_loss, affinity_matrix, confident_label_maps, feature_affinity,
                       pair_indices, pair_loss, random_walk, random_walk_refine, resize_labels, resize_scores,
                       search_offsets, transition_matrix)
from .boundary_affinity import boundary_affinity, boundary_random_walk, line_path, line_paths
from .crf import cam_label_scores, confident_regions, crf_refine_cam, dense_crf

__all__ = [
    'affinity_labels', 'affinity_loss', 'affinity_matrix', 'confident_label_maps', 'feature_affinity',
    'pair_indices', 'pair_loss', 'random_walk', 'random_walk_refine', 'resize_labels', 'resize_scores',
    'search_offsets', 'transition_matrix', 'boundary_affinity', 'boundary_random_walk', 'line_path', 'line_paths',
    'cam_label_scores', 'confident_regions', 'crf_refine_cam', 'dense_crf'
]
