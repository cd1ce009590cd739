"""Pure functions of IRN's class-boundary affinities and random walk (Ahn, Cho & Kwak, "Weakly Supervised
Learning of Instance Segmentation with Inter-pixel Relations", CVPR 2019, Sec. 3-4), the third CAM refiner next
to the dense CRF and PSA's random walk for the pseudo masks of Yang et al., "Cross-domain Semantic Decoupling for
Weakly-Supervised Semantic Segmentation" (BMVC 2023), whose ResNet pipeline follows IRN.

Pairs are those of :func:`~csd_mm.refine.functional.affinity.pair_indices` (PSA's / IRN's half disc of offsets
strictly inside ``radius``), so :func:`~csd_mm.refine.functional.affinity.affinity_labels`, ``affinity_loss``,
``affinity_matrix``, ``transition_matrix`` and ``random_walk`` apply unchanged.

Path of an offset ``d = (dy, dx)`` (IRN's ``PathIndex``): the grid points ``p`` of the bounding box of ``0`` and
``d`` whose distance to the line through ``0`` and ``d`` is below 1, i.e. ``(dy * px - dx * py) ** 2 <
dy ** 2 + dx ** 2``; both ends are on it. Examples: ``(0, 2)`` -> ``(0, 0), (0, 1), (0, 2)``; ``(1, 1)`` -> the
whole 2x2 block.

Affinity of a pair (IRN Eq. 2): ``a_ij = 1 - max_{k on the path from i to j} B_k`` with ``B`` the class-boundary
map in [0, 1]: two positions are related unless a boundary separates them.

Random walk (IRN Sec. 4.1, ``propagate_to_edge``): ``A = a ** beta`` (beta 10) with ones on the diagonal,
``T = D^-1 A``, the CAMs are first multiplied by ``1 - B`` (scores on a boundary are not spread) and then
propagated ``2 ** exp_times`` steps (exp_times 8). IRN pads the boundary map with ones, which zeroes the pairs
that leave the grid; :func:`pair_indices` lists only the pairs inside the grid, which is the same walk.
"""
from functools import lru_cache
from typing import List, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .affinity import affinity_matrix, pair_indices, random_walk, search_offsets, transition_matrix

__all__ = ['line_path', 'line_paths', 'boundary_affinity', 'boundary_random_walk']


def line_path(offset: Union[Tuple[int, int], np.ndarray]) -> np.ndarray:
    """IRN's path of grid points from ``(0, 0)`` to ``offset = (dy, dx)`` (both ends included).

    Args:
        offset (tuple[int, int]): ``(dy, dx)``, not ``(0, 0)``.

    Returns:
        np.ndarray: ``int64 (L, 2)`` points ``(py, px)`` in row-major order.
    """
    dy, dx = (int(v) for v in offset)
    if dy == 0 and dx == 0:
        raise ValueError('line_path: the offset must not be (0, 0)')
    ys = np.arange(min(0, dy), max(0, dy) + 1)
    xs = np.arange(min(0, dx), max(0, dx) + 1)
    py, px = np.meshgrid(ys, xs, indexing='ij')
    on_line = (dy * px - dx * py)**2 < dy * dy + dx * dx
    return np.stack([py[on_line], px[on_line]], axis=1).astype(np.int64)


@lru_cache(maxsize=16)
def _line_paths(radius: int) -> Tuple[np.ndarray, ...]:
    paths = tuple(line_path(d) for d in search_offsets(radius))
    for p in paths:
        p.flags.writeable = False
    return paths


def line_paths(radius: int = 10) -> List[np.ndarray]:
    """The paths of every offset of :func:`~csd_mm.refine.functional.affinity.search_offsets` (same order; cached)."""
    return list(_line_paths(int(radius)))


def boundary_affinity(boundary: Tensor, radius: int = 10) -> Tensor:
    """Affinities ``1 - max_{k on the path} B_k`` of all pairs of a boundary map (IRN Eq. 2).

    For each offset the maximum is taken over shifted copies of ``B`` (one per point of the offset's path), so
    the cost is ``sum_d len(path_d)`` elementwise maxima of ``(N, h, w)`` maps; gradients reach ``B`` through the
    maximum.

    Args:
        boundary (Tensor): ``(N, h, w)``, ``(N, 1, h, w)`` or ``(h, w)`` boundary maps in [0, 1].
        radius (int): Pair radius. Defaults to 10 (IRN's training; 5 at inference).

    Returns:
        Tensor: ``(N, M)`` (``(M,)`` for one ``(h, w)`` map) over the pairs of
        :func:`~csd_mm.refine.functional.affinity.pair_indices`.
    """
    squeeze = boundary.dim() == 2
    b = boundary[None] if squeeze else boundary
    if b.dim() == 4 and b.shape[1] == 1:
        b = b[:, 0]
    if b.dim() != 3:
        raise ValueError(f'boundary_affinity: boundary must be (N, h, w), (N, 1, h, w) or (h, w), got shape '
                         f'{tuple(boundary.shape)}')
    n, h, w = b.shape
    out = []
    for (dy, dx), path in zip(search_offsets(radius), _line_paths(int(radius))):
        x0, x1 = max(0, -dx), w - max(0, dx)  # the "from" positions of pair_indices
        rows = h - dy
        if rows <= 0 or x1 <= x0:
            continue
        shifted = torch.stack([b[:, py:py + rows, x0 + px:x1 + px] for py, px in path.tolist()])
        out.append((1 - shifted.amax(dim=0)).reshape(n, -1))
    aff = torch.cat(out, dim=1) if out else b.new_zeros(n, 0)
    return aff[0] if squeeze else aff


def boundary_random_walk(boundary: Tensor,
                         scores: Tensor,
                         beta: float = 10.0,
                         exp_times: int = 8,
                         radius: int = 5,
                         weight_by_boundary: bool = True) -> Tensor:
    """IRN's random walk of label scores on the affinities of a boundary map (``propagate_to_edge``).

    Args:
        boundary (Tensor): ``(h, w)`` (or ``(1, h, w)``) boundary map in [0, 1].
        scores (Tensor): ``(L, h, w)`` scores to propagate (IRN: the CAMs, without a background channel).
        beta (float): Affinity power. Defaults to 10 (IRN).
        exp_times (int): log2 of the number of walk steps. Defaults to 8 (IRN).
        radius (int): Pair radius. Defaults to 5 (IRN's inference).
        weight_by_boundary (bool): Multiply the scores by ``1 - B`` before the walk (IRN). Defaults to True.

    Returns:
        Tensor: ``(L, h, w)`` propagated scores.
    """
    if boundary.dim() == 3 and boundary.shape[0] == 1:
        boundary = boundary[0]
    if boundary.dim() != 2 or scores.dim() != 3 or scores.shape[1:] != boundary.shape:
        raise ValueError(f'boundary_random_walk: boundary (h, w) and scores (L, h, w) must share (h, w), got '
                         f'{tuple(boundary.shape)} and {tuple(scores.shape)}')
    h, w = boundary.shape
    boundary = boundary.float()
    aff = boundary_affinity(boundary, radius)
    idx_from, idx_to = pair_indices(h, w, radius)
    trans = transition_matrix(affinity_matrix(aff, idx_from, idx_to, h * w, beta))
    x = scores.float() * (1 - boundary) if weight_by_boundary else scores.float()
    return random_walk(x.reshape(x.shape[0], h * w), trans, exp_times).reshape(x.shape)
