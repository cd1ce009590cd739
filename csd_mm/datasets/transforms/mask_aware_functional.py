"""Geometric maths that moves label maps with their image (pure numpy / mmcv functions).

The timm training augmentation of MCTformer (Xu et al., CVPR 2022; DeiT's recipe, Touvron et al., ICML 2021:
random resized crop, RandAugment of Cubuk et al., NeurIPS 2020) moves only the image. In CSD (Yang et al.,
BMVC 2023) the source image's prior mask (1 fg / 0 bg / 255 unsure) rides along as ``gt_seg_map`` and must stay
pixel-aligned with the image through every geometric transform. These functions apply to a label map the
same geometry that mmpretrain's transforms apply to the image, with nearest-neighbour sampling (labels are
never blended) and ``pad_val`` (255, ignore) for the pixels that rotation, shear or translation bring in from
outside the image.

The affine ones reuse mmcv's functions (the very matrices the image goes through); the resize is written
here so that it is exact for any integer dtype and samples pixel centres, as PIL and OpenCV's bicubic image
resizes do.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np

__all__ = ['check_seg_pad_val', 'seg_keys', 'nearest_resize', 'crop_resize_seg', 'translate_offset', 'rotate_seg',
           'shear_seg', 'translate_seg']

# dtypes cv2.warpAffine handles directly; others are warped as float64 (exact for nearest sampling)
_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def check_seg_pad_val(value: int, owner: str) -> int:
    """Returns ``value`` as an int if it is an integer label in ``[0, 255]``, else raises a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 255:
        raise ValueError(f'{owner}: seg_pad_val must be an integer label in [0, 255] (255 = ignore), got '
                         f'{value!r}')
    return int(value)


def seg_keys(results: Dict, owner: str) -> List[str]:
    """The label maps of a result dict: every key in ``seg_fields`` and ``gt_seg_map`` (if present).

    Args:
        results (dict): A pipeline result dict with ``img``.
        owner (str): The calling transform's name, for the error messages.

    Returns:
        list[str]: The keys, ``seg_fields`` order first, without duplicates.

    Raises:
        KeyError: ``img`` is missing, or ``seg_fields`` names a key that ``results`` does not hold.
        ValueError: A label map is not ``[H, W]`` with the image's ``H, W``.
    """
    where = results.get('img_path', '<unknown image>')
    if 'img' not in results:
        raise KeyError(f'{owner}: results has no "img" ({where})')
    keys = list(dict.fromkeys(results.get('seg_fields', [])))
    if results.get('gt_seg_map') is not None and 'gt_seg_map' not in keys:
        keys.append('gt_seg_map')
    img_hw = results['img'].shape[:2]
    for key in keys:
        seg = results.get(key)
        if seg is None:
            raise KeyError(f'{owner}: seg_fields names {key!r} but results has no {key!r} ({where})')
        if seg.ndim != 2 or seg.shape != img_hw:
            raise ValueError(f'{owner}: results[{key!r}] has shape {seg.shape}, expected the image size '
                             f'{tuple(img_hw)} ({where}); label maps must be [H, W] and aligned with the image')
    return keys


def _nearest_index(size_in: int, size_out: int) -> np.ndarray:
    """Source index of each output pixel along one axis: ``floor`` of the accumulated centre (PIL's way)."""
    step = size_in / size_out
    centres = np.cumsum(np.r_[step * 0.5, np.full(size_out - 1, step)])  # sequential float64 sums
    return np.minimum(centres.astype(np.int64), size_in - 1)


def nearest_resize(seg: np.ndarray, out_hw: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour resize that samples pixel centres (PIL's ``NEAREST`` convention).

    Output pixel ``i`` (per axis) copies input pixel ``floor(x_i)``, ``x_i = (i + 0.5) * in / out`` the centre
    of the output pixel mapped back onto the input grid. ``x_i`` is computed as PIL computes it (``in / out / 2``
    plus ``i`` times ``in / out``, added one step at a time in float64), so the result equals PIL's ``NEAREST``
    resize (the image's resize backend here) pixel for pixel, also at exact ties where float rounding decides.
    Every output value is a copy of an input value, for any dtype.

    Args:
        seg (np.ndarray): ``[H, W]`` label map, any dtype.
        out_hw (Sequence[int]): Output ``(h, w)``, both positive.

    Returns:
        np.ndarray: ``[h, w]``, ``seg``'s dtype.
    """
    out_h, out_w = (int(v) for v in out_hw)
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f'nearest_resize needs a positive output size, got {tuple(out_hw)}')
    in_h, in_w = seg.shape[:2]
    return seg[_nearest_index(in_h, out_h)[:, None], _nearest_index(in_w, out_w)[None, :]]


def crop_resize_seg(seg: np.ndarray, box: Tuple[int, int, int, int], out_hw: Sequence[int]) -> np.ndarray:
    """Crops ``seg`` to ``box`` and resizes the crop to ``out_hw`` with :func:`nearest_resize`.

    Args:
        seg (np.ndarray): ``[H, W]`` label map.
        box (tuple): ``(top, left, height, width)`` of the crop, inside the map (what mmpretrain's
            ``RandomResizedCrop.rand_crop_params`` returns).
        out_hw (Sequence[int]): Output ``(h, w)``.

    Returns:
        np.ndarray: ``[h, w]`` label map.
    """
    top, left, height, width = (int(v) for v in box)
    if top < 0 or left < 0 or height <= 0 or width <= 0 or top + height > seg.shape[0] or \
            left + width > seg.shape[1]:
        raise ValueError(f'crop_resize_seg: crop box (top, left, h, w)={box} is not inside the label map of shape '
                         f'{seg.shape}')
    return nearest_resize(seg[top:top + height, left:left + width], out_hw)


def translate_offset(magnitude: float, img_hw: Sequence[int], direction: str) -> float:
    """Translation in pixels of mmpretrain's ``Translate``: ``magnitude`` times the width or the height.

    Args:
        magnitude (float): Signed fraction of the image size.
        img_hw (Sequence[int]): Image ``(h, w)``.
        direction (str): 'horizontal' (uses the width) or 'vertical' (uses the height).

    Returns:
        float: Signed offset in pixels.
    """
    if direction not in ('horizontal', 'vertical'):
        raise ValueError(f"translate_offset: direction must be 'horizontal' or 'vertical', got {direction!r}")
    return float(magnitude) * (img_hw[1] if direction == 'horizontal' else img_hw[0])


def _warp(seg: np.ndarray, warp_fn, pad_val: int) -> np.ndarray:
    """Runs an mmcv warp on a 2-D label map with nearest sampling, whatever its dtype."""
    if seg.dtype in _CV2_DTYPES:
        return warp_fn(seg, pad_val).astype(seg.dtype)
    return warp_fn(seg.astype(np.float64), pad_val).astype(seg.dtype)


def rotate_seg(seg: np.ndarray, angle: float, center: Optional[Tuple[float, float]] = None, scale: float = 1.0,
               pad_val: int = 255) -> np.ndarray:
    """Rotates a label map as ``mmcv.imrotate`` rotates the image (positive angle: clockwise).

    Args:
        seg (np.ndarray): ``[H, W]`` label map.
        angle (float): Angle in degrees, the image's.
        center (tuple, optional): Rotation centre ``(x, y)``; None: the map's centre (as for the image).
        scale (float): Isotropic scale, the image's. Defaults to 1.0.
        pad_val (int): Label of the pixels rotated in from outside. Defaults to 255 (ignore).

    Returns:
        np.ndarray: The rotated map, same shape and dtype.
    """
    return _warp(seg, lambda s, v: mmcv.imrotate(s, angle, center=center, scale=scale, border_value=v,
                                                 interpolation='nearest'), pad_val)


def shear_seg(seg: np.ndarray, magnitude: float, direction: str = 'horizontal', pad_val: int = 255) -> np.ndarray:
    """Shears a label map as ``mmcv.imshear`` shears the image.

    Args:
        seg (np.ndarray): ``[H, W]`` label map.
        magnitude (float): Shear factor, the image's.
        direction (str): 'horizontal' or 'vertical'.
        pad_val (int): Label of the pixels sheared in from outside. Defaults to 255 (ignore).

    Returns:
        np.ndarray: The sheared map, same shape and dtype.
    """
    return _warp(seg, lambda s, v: mmcv.imshear(s, magnitude, direction=direction, border_value=v,
                                                interpolation='nearest'), pad_val)


def translate_seg(seg: np.ndarray, offset: float, direction: str = 'horizontal', pad_val: int = 255) -> np.ndarray:
    """Translates a label map as ``mmcv.imtranslate`` translates the image.

    Args:
        seg (np.ndarray): ``[H, W]`` label map.
        offset (float): Signed offset in pixels (positive: right / down), the image's.
        direction (str): 'horizontal' or 'vertical'.
        pad_val (int): Label of the pixels shifted in from outside. Defaults to 255 (ignore).

    Returns:
        np.ndarray: The translated map, same shape and dtype.
    """
    return _warp(seg, lambda s, v: mmcv.imtranslate(s, offset, direction=direction, border_value=v,
                                                    interpolation='nearest'), pad_val)
