"""Pure functions of MCTformer's class activation maps (attention x patch CAM).

MCTformer-V2 (Xu et al., "Multi-class Token Transformer for Weakly Supervised Semantic Segmentation",
CVPR 2022) localises class c by

* the class-to-patch attention: the attention weights of row (class token) c over the patch columns,
  averaged over the heads and summed over the last K blocks (K = 3 for MCTformer-V2),
* multiplied by ReLU of the patch-token CAM (the conv head's score map before pooling),
* optionally refined by the patch-to-patch attention (patch rows and columns, averaged over heads, summed
  over all blocks): ``refined[c, i] = sum_j A_pp[i, j] * cam[c, j]``.

The CSD paper (Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation",
BMVC 2023) uses these CAMs for its MCTformer baseline (docs/method.md section 9). Attention maps come as a
sequence of per-block tensors ``(N, heads, C + h*w, C + h*w)`` (the class tokens first), as returned by
:class:`~csd_mm.models.backbones.MCTformerViT`; blocks are reduced one at a time, never stacked, to keep
the memory of large test images low.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['class_to_patch_attention', 'patch_to_patch_attention', 'refine_with_patch_attention',
           'mctformer_cams', 'patch_maps_to_pixels']


def _check_attn(attn_maps: Sequence[Tensor], num_classes: int, owner: str) -> Tuple[int, int, int]:
    """Validates the per-block attention maps; returns (num_blocks, N, number of patches)."""
    if isinstance(attn_maps, Tensor):
        attn_maps = list(attn_maps)
    if len(attn_maps) == 0:
        raise ValueError(f'{owner}: no attention maps given (the backbone must run with need_weights=True)')
    shape = tuple(attn_maps[0].shape)
    for i, a in enumerate(attn_maps):
        if a.dim() != 4 or a.shape[-1] != a.shape[-2] or tuple(a.shape) != shape:
            raise ValueError(f'{owner}: attention map {i} has shape {tuple(a.shape)}; every block must give '
                             f'(N, heads, T, T) of one shape (first: {shape})')
    num_patches = shape[-1] - num_classes
    if num_classes < 1 or num_patches < 1:
        raise ValueError(f'{owner}: attention maps with T = {shape[-1]} tokens cannot hold {num_classes} class '
                         'tokens and at least one patch')
    return len(attn_maps), shape[0], num_patches


def class_to_patch_attention(attn_maps: Sequence[Tensor], num_classes: int, num_layers: int = 3) -> Tensor:
    """Class-to-patch attention of MCTformer, head-averaged and summed over the last blocks.

    ``out[n, c, j] = sum_{l in last num_layers} mean_h attn_l[n, h, c, C + j]``.

    Args:
        attn_maps (Sequence[Tensor]): Per-block attention ``(N, heads, C + P, C + P)``, class tokens first.
        num_classes (int): Number of class tokens C.
        num_layers (int): How many of the last blocks to sum (MCTformer-V2: 3).

    Returns:
        Tensor: ``(N, C, P)``.
    """
    num_blocks, _, _ = _check_attn(attn_maps, num_classes, 'class_to_patch_attention')
    if not 1 <= num_layers <= num_blocks:
        raise ValueError(f'class_to_patch_attention: num_layers must be in [1, {num_blocks}] (number of blocks), '
                         f'got {num_layers}')
    out = None
    for a in list(attn_maps)[num_blocks - num_layers:]:
        part = a[:, :, :num_classes, num_classes:].mean(dim=1)
        out = part if out is None else out + part
    return out


def patch_to_patch_attention(attn_maps: Sequence[Tensor], num_classes: int) -> Tensor:
    """Patch-to-patch attention of MCTformer, head-averaged and summed over all blocks.

    ``out[n, i, j] = sum_l mean_h attn_l[n, h, C + i, C + j]``.

    Args:
        attn_maps (Sequence[Tensor]): Per-block attention ``(N, heads, C + P, C + P)``.
        num_classes (int): Number of class tokens C.

    Returns:
        Tensor: ``(N, P, P)``.
    """
    _check_attn(attn_maps, num_classes, 'patch_to_patch_attention')
    out = None
    for a in attn_maps:
        part = a[:, :, num_classes:, num_classes:].mean(dim=1)
        out = part if out is None else out + part
    return out


def refine_with_patch_attention(cams: Tensor, patch_attn: Tensor) -> Tensor:
    """Propagates CAMs along the patch-to-patch affinity: ``out[n, c, i] = sum_j A[n, i, j] cam[n, c, j]``.

    Args:
        cams (Tensor): ``(N, C, h, w)``.
        patch_attn (Tensor): ``(N, h*w, h*w)``.

    Returns:
        Tensor: ``(N, C, h, w)``.
    """
    if cams.dim() != 4:
        raise ValueError(f'refine_with_patch_attention: cams must be (N, C, h, w), got {tuple(cams.shape)}')
    n, c, h, w = cams.shape
    if tuple(patch_attn.shape) != (n, h * w, h * w):
        raise ValueError('refine_with_patch_attention: patch attention must be (N, h*w, h*w) = '
                         f'{(n, h * w, h * w)}, got {tuple(patch_attn.shape)}')
    return torch.einsum('nij,ncj->nci', patch_attn, cams.flatten(2)).reshape(n, c, h, w)


def mctformer_cams(attn_maps: Sequence[Tensor], score_map: Tensor, num_layers: int = 3,
                   patch_refine: bool = True) -> Tensor:
    """MCTformer-V2's CAMs on the patch grid.

    ``cam = class_to_patch_attention(last num_layers) * ReLU(score_map)``, then, if ``patch_refine``,
    ``refine_with_patch_attention(cam, patch_to_patch_attention(all blocks))``. Non-negative.

    Args:
        attn_maps (Sequence[Tensor]): Per-block attention ``(N, heads, C + h*w, C + h*w)``.
        score_map (Tensor): Patch CAM (conv head output before pooling) ``(N, C, h, w)``.
        num_layers (int): Blocks summed for the class-to-patch attention. Defaults to 3 (MCTformer-V2).
        patch_refine (bool): Refine with the patch-to-patch attention. Defaults to True.

    Returns:
        Tensor: ``(N, C, h, w)``.
    """
    if score_map.dim() != 4:
        raise ValueError(f'mctformer_cams: score_map must be (N, C, h, w), got {tuple(score_map.shape)}')
    n, c, h, w = score_map.shape
    _, n_attn, num_patches = _check_attn(attn_maps, c, 'mctformer_cams')
    if n_attn != n or num_patches != h * w:
        raise ValueError(f'mctformer_cams: attention maps for N = {n_attn} images with {num_patches} patches do not '
                         f'match the score map {tuple(score_map.shape)}')
    cams = class_to_patch_attention(attn_maps, c, num_layers).reshape(n, c, h, w) * F.relu(score_map)
    if patch_refine:
        cams = refine_with_patch_attention(cams, patch_to_patch_attention(attn_maps, c))
    return cams


def patch_maps_to_pixels(maps: Tensor, patch_size: int, valid_hw: Tuple[int, int]) -> Tensor:
    """Brings patch-grid maps to the pixel grid of the (unpadded) input.

    The patch grid ``(h, w)`` covers ``(h * p, w * p)`` pixels, of which the input's ``valid_hw`` are real
    and the rest is the bottom/right padding of the patch embedding. The maps are bilinearly upsampled
    (``align_corners=False``) to ``(h * p, w * p)`` and cropped to ``valid_hw``, so they stay aligned with
    the image whether or not its sides are multiples of ``p``.

    Args:
        maps (Tensor): ``(N, C, h, w)``.
        patch_size (int): Patch size p.
        valid_hw (tuple[int, int]): Input size ``(H, W)`` with ``(h-1) * p < H <= h * p`` (same for W).

    Returns:
        Tensor: ``(N, C, H, W)``.
    """
    if maps.dim() != 4:
        raise ValueError(f'patch_maps_to_pixels: maps must be (N, C, h, w), got {tuple(maps.shape)}')
    h, w = maps.shape[-2:]
    H, W = int(valid_hw[0]), int(valid_hw[1])
    if not ((h - 1) * patch_size < H <= h * patch_size and (w - 1) * patch_size < W <= w * patch_size):
        raise ValueError(f'patch_maps_to_pixels: an input of {(H, W)} pixels does not give a {(h, w)} grid of '
                         f'{patch_size}-pixel patches')
    up = F.interpolate(maps, size=(h * patch_size, w * patch_size), mode='bilinear', align_corners=False)
    return up[..., :H, :W]
