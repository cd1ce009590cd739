"""Registered transform for IRN's random crop-or-pad (Ahn et al., CVPR 2019), kept by CSD (Yang et al., BMVC 2023).

The pixel maths is :mod:`csd_mm.datasets.transforms.random_crop_or_pad_functional`; this is a thin mmcv
``BaseTransform`` wrapper.
"""
from numbers import Integral, Real
from typing import Dict, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS

from .mask_aware_functional import seg_keys
from .random_crop_or_pad_functional import crop_or_pad, shift_range

__all__ = ['RandomCropOrPad']


def _check_pad_val(name: str, value: Union[Real, Sequence[Real]]) -> Union[float, Tuple[float, ...]]:
    values = np.asarray(value, dtype=np.float64) if not isinstance(value, str) else None
    if values is None or values.ndim > 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f'RandomCropOrPad: {name} must be a finite number or a sequence of them (one per channel), '
                         f'got {value!r}')
    return float(values) if values.ndim == 0 else tuple(float(v) for v in values)


@TRANSFORMS.register_module()
class RandomCropOrPad(BaseTransform):
    """IRN's random crop of the CAM network's training images, padded with the mean colour.

    Puts the image into a ``crop_size`` container. Along each axis independently, an image larger than the
    container is cropped at a uniformly random offset and a smaller one is placed at a uniformly random offset
    inside it (IRN's ``imutils.random_crop``); the rest of the container is filled with ``img_pad_val``. Unlike
    mmseg's ``RandomCrop`` followed by mmcv's ``Pad`` (which always pads at the bottom / right), a small image
    can end up anywhere in the container.

    IRN normalises before cropping and fills with 0, i.e. with the ImageNet mean colour. Here normalisation is
    the data preprocessor's job and the image is still ``uint8`` BGR, so configs pass the mean rounded to
    integers in BGR order, ``img_pad_val=(104, 116, 124)`` (from ``(103.53, 116.28, 123.675)``).

    Every label map moves with the same offsets: ``gt_seg_map`` and every key in ``seg_fields`` (filled with
    ``seg_pad_val``). In CSD the source image's prior mask is loaded as ``gt_seg_map`` and must stay
    pixel-aligned with the image.

    Required keys: ``img`` (``[H, W]`` or ``[H, W, C]``). Optional keys: ``gt_seg_map``, ``seg_fields`` and the
    keys it names (each ``[H, W]``, the image's size).

    Modified keys: ``img``, ``img_shape``, ``gt_seg_map`` and the ``seg_fields`` keys.

    Args:
        crop_size (int | tuple[int, int]): ``(h, w)`` of the container (an int means a square). IRN: 512.
        img_pad_val (float | Sequence[float]): Image fill value, one number or one per channel in the image's
            channel order; an integer image needs integers. Defaults to 0.
        seg_pad_val (int): Fill value of the label maps. Defaults to 255 (ignore), as IRN.
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]],
                 img_pad_val: Union[Real, Sequence[Real]] = 0,
                 seg_pad_val: int = 255) -> None:
        size = (crop_size, crop_size) if isinstance(crop_size, Integral) else tuple(crop_size)
        if len(size) != 2 or not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in size):
            raise ValueError('RandomCropOrPad: crop_size must be a positive int or a pair (h, w) of them, got '
                             f'{crop_size!r}')
        if not isinstance(seg_pad_val, Integral) or isinstance(seg_pad_val, bool) or not 0 <= seg_pad_val <= 255:
            raise ValueError(f'RandomCropOrPad: seg_pad_val must be an integer in [0, 255], got {seg_pad_val!r}')
        self.crop_size = (int(size[0]), int(size[1]))
        self.img_pad_val = _check_pad_val('img_pad_val', img_pad_val)
        self.seg_pad_val = int(seg_pad_val)

    @cache_randomness
    def _draw_shift(self, img_hw: Tuple[int, int]) -> Tuple[int, int]:
        """Per-axis shift, uniform over :func:`shift_range` (IRN's ``randrange(|crop - size| + 1)``)."""
        shift = []
        for size, crop in zip(img_hw, self.crop_size):
            lo, hi = shift_range(int(size), crop)
            shift.append(int(np.random.randint(lo, hi + 1)))
        return shift[0], shift[1]

    def transform(self, results: Dict) -> Dict:
        """Crops / pads the image and its label maps with one random shift.

        Args:
            results (dict): The pipeline's result dict.

        Returns:
            dict: ``results`` with ``img``, ``img_shape`` and the label maps replaced.

        Raises:
            KeyError, ValueError: See :func:`~.mask_aware_functional.seg_keys` (``img`` or a label map
                missing, a label map not ``[H, W]`` at the image's size).
        """
        keys = seg_keys(results, 'RandomCropOrPad')
        img = results['img']
        shift = self._draw_shift(img.shape[:2])
        results['img'] = crop_or_pad(img, self.crop_size, shift, self.img_pad_val)
        for key in keys:
            results[key] = crop_or_pad(results[key], self.crop_size, shift, self.seg_pad_val)
        results['img_shape'] = self.crop_size
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, img_pad_val={self.img_pad_val}, '
                f'seg_pad_val={self.seg_pad_val})')
