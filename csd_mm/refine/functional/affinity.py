"""Pure functions of PSA's affinity refinement (Ahn & Kwak, "Learning Pixel-level Semantic Affinity with
Image-level Supervision", CVPR 2018), the refinement MCTformer (Xu et al., CVPR 2022) applies to its CAMs and
that Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation" (BMVC 2023)
inherit for their MCTformer pseudo masks.

Pairs. Two positions of a ``(h, w)`` grid form a pair when their offset ``(dy, dx)`` lies in PSA's half disc:
``dy = 0, 0 < dx < radius`` or ``0 < dy < radius, |dx| < radius`` with ``dx^2 + dy^2 < radius^2`` (strictly
inside the radius, PSA's ``search_dst``; radius 5 gives 34 offsets, radius 2 the 4 forward 8-neighbours,
radius 1 none). Each unordered pair appears once. Unlike PSA, which only takes "from" positions at least
``radius - 1`` away from the left, right and bottom borders, every pair inside the grid is used (same
offsets; no pairs are lost at the borders), and the same pair list serves labels, loss and random walk.

Labels (PSA Eq. 4-5): on a confident label map (255 = unsure), a pair with both ends labelled is positive if
the labels agree (background positive if both are 0, foreground positive otherwise) and negative if they
differ.

Affinity: ``a_ij = exp(-mean_c |f_i - f_j|)`` (PSA Eq. 3; PSA takes the mean of the absolute differences over
the C channels, i.e. the L1 distance divided by C, which keeps the scale independent of C).

Loss (PSA Eq. 6-8): ``L = L_bg+ / 4 + L_fg+ / 4 + L_neg / 2`` with each term the mean over its pairs of
``-log(a + eps)`` (positives) or ``-log(1 + eps - a)`` (negatives), ``eps = 1e-5``.

Random walk (PSA Sec. 3.4): the affinity matrix ``A`` holds ``a_ij ** beta`` for the pairs in both
directions and 1 on the diagonal; the transition matrix is ``T = D^-1 A`` (rows sum to 1). The label scores
(CAMs with a background channel) are propagated ``2 ** logt`` times: ``s <- T s``. Every step averages, so a
constant map is unchanged (per-pixel normalised scores stay normalised) and, since ``A`` is symmetric, the
degree-weighted mass ``sum_i d_i s_i`` is conserved. PSA's defaults: ``radius = 5``, ``beta = 8``,
``logt = 8`` at 1/8 of the image resolution (IRN, Ahn et al., CVPR 2019, uses beta 10 at 1/4). PSA computes
``T ** (2 ** logt)`` by dense repeated squaring; here ``T`` is sparse (about ``2 * 34 + 1`` entries per row)
and the ``2 ** logt`` products with the score matrix are computed instead, which is the same operator at a
fraction of the cost.
"""
import warnings
from functools import lru_cache
from typing import Dict, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['search_offsets', 'pair_indices', 'affinity_labels', 'affinity_loss', 'confident_label_maps',
           'pair_loss', 'resize_labels', 'feature_affinity', 'affinity_matrix', 'transition_matrix', 'random_walk',
           'random_walk_refine']


def search_offsets(radius: int = 5) -> np.ndarray:
    """PSA's pair offsets ``(dy, dx)`` inside the radius (half disc, strict inequality), in PSA's order.

    Args:
        radius (int): Pairs are closer than ``radius`` (Euclidean). Defaults to 5 (PSA, IRN).

    Returns:
        np.ndarray: ``int64 (P, 2)``; ``P = 34`` for radius 5, 4 for radius 2, 0 for radius 1.
    """
    radius = int(radius)
    if radius < 1:
        raise ValueError(f'search_offsets: radius must be >= 1, got {radius}')
    offsets = [(0, dx) for dx in range(1, radius)]
    offsets += [(dy, dx) for dy in range(1, radius) for dx in range(-radius + 1, radius)
                if dx * dx + dy * dy < radius * radius]
    return np.asarray(offsets, dtype=np.int64).reshape(-1, 2)


@lru_cache(maxsize=32)
def _pair_indices(height: int, width: int, radius: int) -> Tuple[np.ndarray, np.ndarray]:
    grid = np.arange(height * width, dtype=np.int64).reshape(height, width)
    froms, tos = [], []
    for dy, dx in search_offsets(radius):  # loop over the <= 34 offsets, vectorised over positions
        x0, x1 = max(0, -dx), width - max(0, dx)
        if height - dy <= 0 or x1 <= x0:
            continue
        froms.append(grid[:height - dy, x0:x1].reshape(-1))
        tos.append(grid[dy:, x0 + dx:x1 + dx].reshape(-1))
    idx_from = np.concatenate(froms) if froms else np.zeros(0, np.int64)
    idx_to = np.concatenate(tos) if tos else np.zeros(0, np.int64)
    idx_from.flags.writeable = False
    idx_to.flags.writeable = False
    return idx_from, idx_to


def pair_indices(height: int, width: int, radius: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """Flat indices (row-major, ``y * width + x``) of every pair of a ``(height, width)`` grid.

    Pairs are listed offset by offset (order of :func:`search_offsets`), row-major within an offset; each
    unordered pair appears once. The arrays are cached and read-only.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``idx_from``, ``idx_to``, both ``int64 (M,)``.
    """
    if height < 1 or width < 1:
        raise ValueError(f'pair_indices: the grid must be at least 1x1, got {(height, width)}')
    return _pair_indices(int(height), int(width), int(radius))


def affinity_labels(label: Union[np.ndarray, Tensor], radius: int = 5,
                    ignore_index: int = 255) -> Tuple[Tensor, Tensor, Tensor]:
    """PSA's pairwise affinity labels from confident label maps.

    Args:
        label (np.ndarray | Tensor): ``(..., h, w)`` integer label maps (0 background, > 0 foreground,
            ``ignore_index`` unsure).
        radius (int): Pair radius. Defaults to 5.
        ignore_index (int): Unsure label. Defaults to 255.

    Returns:
        tuple[Tensor, Tensor, Tensor]: Boolean ``(..., M)`` masks over the pairs of :func:`pair_indices`:
        background positives (both 0), foreground positives (same label > 0), negatives (different labels);
        pairs with an unsure end are in none of them.
    """
    label = torch.as_tensor(label)
    if label.dim() < 2:
        raise ValueError(f'affinity_labels: label must be (..., h, w), got shape {tuple(label.shape)}')
    if label.is_floating_point():
        label = label.round().long()
    h, w = label.shape[-2:]
    idx_from, idx_to = (torch.from_numpy(i.copy()).to(label.device) for i in pair_indices(h, w, radius))
    flat = label.reshape(*label.shape[:-2], h * w)
    lf = flat[..., idx_from]
    lt = flat[..., idx_to]
    valid = (lf != ignore_index) & (lt != ignore_index)
    same = lf == lt
    bg_pos = valid & same & (lf == 0)
    fg_pos = valid & same & (lf != 0)
    neg = valid & ~same
    return bg_pos, fg_pos, neg


def affinity_loss(aff: Tensor, bg_pos: Tensor, fg_pos: Tensor, neg: Tensor,
                  eps: float = 1e-5) -> Dict[str, Tensor]:
    """PSA's affinity loss ``L_bg+ / 4 + L_fg+ / 4 + L_neg / 2`` (Ahn & Kwak, CVPR 2018, Eq. 6-8).

    Each term is averaged over its pairs in the whole batch (PSA divides by the pair count + ``eps``, so an
    empty term is 0).

    Args:
        aff (Tensor): ``(..., M)`` predicted affinities in (0, 1].
        bg_pos (Tensor): Same shape, background positive pairs (bool or 0/1).
        fg_pos (Tensor): Same shape, foreground positive pairs.
        neg (Tensor): Same shape, negative pairs.
        eps (float): PSA's 1e-5 inside the logs and in the counts.

    Returns:
        dict[str, Tensor]: ``loss`` (the total) and the three terms ``bg_pos``, ``fg_pos``, ``neg``.
    """
    for name, t in (('bg_pos', bg_pos), ('fg_pos', fg_pos), ('neg', neg)):
        if t.shape != aff.shape:
            raise ValueError(f'affinity_loss: {name} has shape {tuple(t.shape)}, aff has {tuple(aff.shape)}')
    bg_pos, fg_pos, neg = (t.to(aff.dtype) for t in (bg_pos, fg_pos, neg))
    log_pos = -torch.log(aff + eps)
    log_neg = -torch.log(1.0 + eps - aff)
    bg = (bg_pos * log_pos).sum() / (bg_pos.sum() + eps)
    fg = (fg_pos * log_pos).sum() / (fg_pos.sum() + eps)
    ng = (neg * log_neg).sum() / (neg.sum() + eps)
    return dict(loss=bg / 4 + fg / 4 + ng / 2, bg_pos=bg, fg_pos=fg, neg=ng)


def confident_label_maps(data_samples, where: str) -> Tensor:
    """The confident label maps (``gt_sem_seg``: 0, ``c + 1``, 255) of a batch as a long ``(N, H, W)`` tensor.

    Raises a ValueError naming ``where`` (the calling model) when a sample has no label map.
    """
    if data_samples is None or any('gt_sem_seg' not in s for s in data_samples):
        raise ValueError(f'{where}: loss mode needs data samples with gt_sem_seg (confident label maps)')
    return torch.stack([s.gt_sem_seg.data.reshape(s.gt_sem_seg.data.shape[-2:]) for s in data_samples]).long()


def pair_loss(aff: Tensor, labels: Tensor, radius: int, ignore_index: int = 255) -> Dict[str, Tensor]:
    """The training losses of a pair-affinity network (PSA's AffinityNet, IRN's boundary branch).

    Args:
        aff (Tensor): ``(N, M)`` predicted affinities of the :func:`pair_indices` pairs of an ``(h, w)`` grid.
        labels (Tensor): ``(N, h, w)`` confident label maps at that grid (nearest-resized by the caller); the
            pair labels come from :func:`affinity_labels`, the loss from :func:`affinity_loss`.
        radius (int): Pair radius.
        ignore_index (int): Unsure label. Defaults to 255.

    Returns:
        dict[str, Tensor]: ``loss_aff`` (the total, to optimise) and the detached terms ``aff_bg_pos``,
        ``aff_fg_pos``, ``aff_neg`` (logged).
    """
    bg_pos, fg_pos, neg = affinity_labels(labels, radius, ignore_index)
    parts = affinity_loss(aff, bg_pos, fg_pos, neg)
    return dict(loss_aff=parts['loss'], aff_bg_pos=parts['bg_pos'].detach(), aff_fg_pos=parts['fg_pos'].detach(),
                aff_neg=parts['neg'].detach())


def resize_labels(labels: Tensor, size: Tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of ``(N, H, W)`` label maps to ``size`` (labels stay labels), centre sample.

    Output position ``i`` takes input ``floor((i + 0.5) * H / h)`` (``mode='nearest-exact'``): for a
    reduction by 4 the centre pixel ``4i + 2`` of each 4x4 cell, as IRN's ``pil_rescale(label, 0.25, 0)`` (PIL's
    nearest). PyTorch's ``'nearest'`` would take the top-left pixel ``4i``, a shift of 1.5 pixels against the
    cell the network's position covers. PSA labels each 8x8 cell with the argmax of its block-averaged CRF
    scores (its ``AvgPool2d(8)`` before ``ExtractAffinityLabelInRadius``), not a sample; the centre sample is
    the closer of the two samples to that, and cells with a label boundary can still differ.
    """
    return F.interpolate(labels[:, None].float(), size=tuple(size), mode='nearest-exact')[:, 0].long()


def feature_affinity(feats: Tensor, radius: int = 5) -> Tensor:
    """Affinities ``exp(-mean_c |f_i - f_j|)`` of all pairs of a feature map (PSA Eq. 3).

    Args:
        feats (Tensor): ``(N, C, h, w)`` or ``(C, h, w)`` embeddings.
        radius (int): Pair radius. Defaults to 5.

    Returns:
        Tensor: ``(N, M)`` (or ``(M,)``) affinities over the pairs of :func:`pair_indices`.
    """
    squeeze = feats.dim() == 3
    if squeeze:
        feats = feats[None]
    if feats.dim() != 4:
        raise ValueError(f'feature_affinity: feats must be (N, C, h, w), got shape {tuple(feats.shape)}')
    n, c, h, w = feats.shape
    idx_from, idx_to = (torch.from_numpy(i.copy()).to(feats.device) for i in pair_indices(h, w, radius))
    flat = feats.reshape(n, c, h * w)
    aff = torch.exp(-(flat[:, :, idx_from] - flat[:, :, idx_to]).abs().mean(dim=1))
    return aff[0] if squeeze else aff


def affinity_matrix(aff: Tensor, idx_from: Union[np.ndarray, Tensor], idx_to: Union[np.ndarray, Tensor],
                    num_nodes: int, beta: float = 8.0) -> Tensor:
    """Sparse symmetric affinity matrix ``A`` with ``A_ij = A_ji = a_ij ** beta`` and ``A_ii = 1`` (PSA).

    Args:
        aff (Tensor): ``(M,)`` pair affinities.
        idx_from (array-like): ``(M,)`` first ends of the pairs.
        idx_to (array-like): ``(M,)`` second ends.
        num_nodes (int): Number of positions ``h * w``.
        beta (float): Power sharpening the affinities. Defaults to 8 (PSA).

    Returns:
        Tensor: Coalesced sparse COO ``(num_nodes, num_nodes)``.
    """
    aff = aff.reshape(-1)
    idx_from = torch.as_tensor(np.array(idx_from) if not isinstance(idx_from, Tensor) else idx_from,
                               dtype=torch.long, device=aff.device).reshape(-1)
    idx_to = torch.as_tensor(np.array(idx_to) if not isinstance(idx_to, Tensor) else idx_to,
                             dtype=torch.long, device=aff.device).reshape(-1)
    if not (aff.numel() == idx_from.numel() == idx_to.numel()):
        raise ValueError(f'affinity_matrix: aff ({aff.numel()}), idx_from ({idx_from.numel()}) and idx_to '
                         f'({idx_to.numel()}) must have the same length')
    diag = torch.arange(num_nodes, device=aff.device)
    rows = torch.cat([idx_from, idx_to, diag])
    cols = torch.cat([idx_to, idx_from, diag])
    powered = aff.pow(beta)
    values = torch.cat([powered, powered, torch.ones(num_nodes, dtype=aff.dtype, device=aff.device)])
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (num_nodes, num_nodes),
                                   check_invariants=True).coalesce()


def transition_matrix(aff_mat: Tensor) -> Tensor:
    """Row-normalised transition matrix ``T = D^-1 A`` (``D`` the row sums), dense or sparse like ``A``."""
    if aff_mat.is_sparse:
        aff_mat = aff_mat.coalesce()
        idx, values = aff_mat.indices(), aff_mat.values()
        deg = torch.zeros(aff_mat.shape[0], dtype=values.dtype, device=values.device).index_add_(
            0, idx[0], values)
        if torch.any(deg <= 0):
            raise ValueError('transition_matrix: every row of the affinity matrix needs a positive sum')
        return torch.sparse_coo_tensor(idx, values / deg[idx[0]], aff_mat.shape,
                                       check_invariants=False).coalesce()
    deg = aff_mat.sum(dim=1, keepdim=True)
    if torch.any(deg <= 0):
        raise ValueError('transition_matrix: every row of the affinity matrix needs a positive sum')
    return aff_mat / deg


def random_walk(scores: Tensor, trans: Tensor, logt: int = 8) -> Tensor:
    """Propagates label scores ``2 ** logt`` steps: ``s <- T s`` for each of the L score vectors.

    Args:
        scores (Tensor): ``(L, n)`` scores (one row per label, one column per position).
        trans (Tensor): ``(n, n)`` transition matrix (dense or sparse), rows summing to 1.
        logt (int): log2 of the number of steps. Defaults to 8 (PSA).

    Returns:
        Tensor: ``(L, n)`` propagated scores.
    """
    if scores.dim() != 2 or trans.shape != (scores.shape[1], scores.shape[1]):
        raise ValueError(f'random_walk: scores must be (L, n) and trans (n, n), got {tuple(scores.shape)} and '
                         f'{tuple(trans.shape)}')
    if logt < 0:
        raise ValueError(f'random_walk: logt must be >= 0, got {logt}')
    x = scores.t().to(trans.dtype).contiguous()
    if trans.is_sparse:
        with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR @ dense is all we use
            warnings.simplefilter('ignore', UserWarning)
            trans = trans.to_sparse_csr()
    for _ in range(2**int(logt)):
        x = trans @ x
    return x.t()


def random_walk_refine(aff_features: Tensor,
                       cams_with_bg: Tensor,
                       beta: float = 8.0,
                       logt: int = 8,
                       radius: int = 5) -> Tensor:
    """PSA's random-walk refinement of label scores with the affinities of an embedding.

    Args:
        aff_features (Tensor): ``(C, h, w)`` (or ``(1, C, h, w)``) affinity embedding of one image.
        cams_with_bg (Tensor): ``(L, h, w)`` label scores ``[bg, cam_1 .. cam_K]`` at the embedding's size
            (average-pooled onto the grid first, as PSA: :func:`~.stride_grid.pool_to_grid`).
        beta (float): Affinity power. Defaults to 8 (PSA).
        logt (int): log2 of the number of walk steps. Defaults to 8 (PSA).
        radius (int): Pair radius. Defaults to 5 (PSA).

    Returns:
        Tensor: ``(L, h, w)`` propagated scores.
    """
    if aff_features.dim() == 4:
        if aff_features.shape[0] != 1:
            raise ValueError(f'random_walk_refine: one image at a time, got {aff_features.shape[0]}')
        aff_features = aff_features[0]
    if aff_features.dim() != 3 or cams_with_bg.dim() != 3 or \
            aff_features.shape[1:] != cams_with_bg.shape[1:]:
        raise ValueError(f'random_walk_refine: aff_features (C, h, w) and cams_with_bg (L, h, w) must share '
                         f'(h, w), got {tuple(aff_features.shape)} and {tuple(cams_with_bg.shape)}')
    _, h, w = aff_features.shape
    aff = feature_affinity(aff_features.float(), radius)
    idx_from, idx_to = pair_indices(h, w, radius)
    trans = transition_matrix(affinity_matrix(aff, idx_from, idx_to, h * w, beta))
    out = random_walk(cams_with_bg.reshape(cams_with_bg.shape[0], h * w).float(), trans, logt)
    return out.reshape(cams_with_bg.shape[0], h, w)

