"""Geometry shared by the random-walk refiners: image pixels <-> the cells of a network's output grid.

PSA's ``infer_aff.py`` (Ahn & Kwak, CVPR 2018) keeps every grid position on a fixed block of ``cell x cell``
image pixels: the normalised image is zero-padded at the bottom / right to a multiple of the stride, so the
network's map has ``ceil(H / cell) x ceil(W / cell)`` positions. The refiners pad with mmseg's ``stack_batch``,
the function ``SegDataPreProcessor`` pads with: it pads what it is given, the normalised image, with
``pad_val=0``, as PSA and IRN do. The CAMs are zero-padded the same way and average-pooled by ``cell``
(:func:`pool_to_grid`: position ``(i, j)`` holds the mean of pixels ``[i*cell, (i+1)*cell) x
[j*cell, (j+1)*cell)``, counting padded pixels as 0); after the walk, the grid is upsampled bilinearly
(``align_corners=False``) by ``cell`` and cropped back to the image (:func:`upsample_from_grid`). Resizing the
CAM straight onto an unpadded map's size instead (e.g. ``area`` interpolation to ``ceil(H / 8)`` rows) gives
bins of ``H / ceil(H / 8)`` pixels that drift off the network's cells (up to ~4 px at H = 500). The IRN refiner
uses the same geometry at stride 4; IRN itself walks its stride-4 CAM instead of a pooled full-resolution one
(docs/method.md section 8).
"""
from typing import Sequence, Tuple

import torch.nn.functional as F
from mmseg.utils import stack_batch
from torch import Tensor

__all__ = ['grid_size', 'pool_to_grid', 'upsample_from_grid', 'map_stride']


def grid_size(size: Sequence[int], cell: int) -> Tuple[int, int]:
    """``(ceil(H / cell), ceil(W / cell))``: the grid positions that cover an ``(H, W)`` image."""
    cell = int(cell)
    if cell < 1:
        raise ValueError(f'grid_size: cell must be >= 1, got {cell}')
    return -(-int(size[0]) // cell), -(-int(size[1]) // cell)


def pool_to_grid(maps: Tensor, cell: int) -> Tensor:
    """Average-pools ``(L, H, W)`` maps onto the grid of ``cell x cell`` blocks, zero-padded bottom / right.

    Returns:
        Tensor: ``(L, ceil(H / cell), ceil(W / cell))`` float maps; an edge position averages its in-image pixels
        with the padding's zeros (PSA's ``F.avg_pool2d(padded_cam, 8, 8)``).
    """
    if maps.dim() != 3:
        raise ValueError(f'pool_to_grid: maps must be (L, H, W), got shape {tuple(maps.shape)}')
    cell = int(cell)
    if cell < 1:
        raise ValueError(f'pool_to_grid: cell must be >= 1, got {cell}')
    if cell == 1:
        return maps.float()
    padded, _ = stack_batch([maps.float()], size_divisor=cell)  # (1, L, H_pad, W_pad), zeros bottom / right
    return F.avg_pool2d(padded, cell)[0]


def upsample_from_grid(maps: Tensor, cell: int, size: Sequence[int]) -> Tensor:
    """Bilinear upsampling (``align_corners=False``) of ``(L, h, w)`` grid maps by ``cell``, cropped to ``size``.

    The grid covers ``(h * cell, w * cell)`` pixels (the padded image); the crop keeps the top-left
    ``size = (H, W)`` of them, so every position stays on its own block of pixels.

    Raises:
        ValueError: ``size`` is larger than the grid covers.
    """
    if maps.dim() != 3:
        raise ValueError(f'upsample_from_grid: maps must be (L, h, w), got shape {tuple(maps.shape)}')
    cell = int(cell)
    h, w = maps.shape[-2:]
    out_h, out_w = int(size[0]), int(size[1])
    if out_h > h * cell or out_w > w * cell:
        raise ValueError(f'upsample_from_grid: a ({h}, {w}) grid of {cell}-pixel cells covers '
                         f'{(h * cell, w * cell)} pixels, less than the asked {(out_h, out_w)}')
    up = maps.float()
    if cell > 1:
        up = F.interpolate(up[None], size=(h * cell, w * cell), mode='bilinear', align_corners=False)[0]
    return up[:, :out_h, :out_w]


def map_stride(padded_size: Sequence[int], map_size: Sequence[int], where: str) -> int:
    """The integer stride of a network's map on its padded input; a clear error when there is none.

    Args:
        padded_size (Sequence[int]): ``(H_pad, W_pad)`` of the (padded) network input.
        map_size (Sequence[int]): ``(h, w)`` of its output map.
        where (str): Prefix of the error message (the caller).

    Raises:
        ValueError: ``padded_size`` is not ``map_size`` times one integer in both directions.
    """
    pad_h, pad_w = int(padded_size[0]), int(padded_size[1])
    h, w = int(map_size[0]), int(map_size[1])
    stride = pad_h // h if h else 0
    if stride < 1 or pad_h != stride * h or pad_w != stride * w:
        raise ValueError(f'{where}: the map {(h, w)} is not the padded input {(pad_h, pad_w)} divided by an integer '
                         'stride (set size_divisor to a multiple of the stride)')
    return stride
