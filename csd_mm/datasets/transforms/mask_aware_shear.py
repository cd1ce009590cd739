"""mmpretrain's RandAugment ``Shear`` that also shears the label maps (registered in mmseg's TRANSFORMS).

One of the geometric ops of RandAugment (Cubuk et al., NeurIPS 2020) in timm's 'rand-m9-mstd0.5-inc1' policy,
which MCTformer (Xu et al., CVPR 2022) trains with. In CSD (Yang et al., BMVC 2023) the source image's prior
mask rides along as ``gt_seg_map``; the label maths is :mod:`.mask_aware_functional`.
"""
from typing import Dict

import mmcv
from mmpretrain.datasets.transforms import Shear

from mmseg.registry import TRANSFORMS

from .mask_aware_functional import check_seg_pad_val, seg_keys, shear_seg

__all__ = ['MaskAwareShear']


@TRANSFORMS.register_module()
class MaskAwareShear(Shear):
    """Shears the image and, by the same factor, every label map.

    The random draws (apply with ``prob``, magnitude, sign) and the image shear are mmpretrain's ``Shear``'s,
    in the same order, so without label maps the output equals mmpretrain's pixel for pixel for the same random
    state. Every label map (``gt_seg_map`` and the ``seg_fields`` keys) is sheared with the same matrix and
    nearest-neighbour sampling; the pixels sheared in from outside get ``seg_pad_val``.

    Required keys: ``img``. Optional keys: ``gt_seg_map``, ``seg_fields`` and the keys it names (``[H, W]``,
    the image's size).

    Modified keys: ``img``, ``gt_seg_map`` and the ``seg_fields`` keys.

    Args:
        seg_pad_val (int): Label of the pixels sheared in from outside the label map. Defaults to 255 (ignore).
        *args, **kwargs: mmpretrain ``Shear``'s arguments (``magnitude`` or ``magnitude_range``, ``pad_val``,
            ``prob``, ``direction``, ``random_negative_prob``, ``interpolation``, ...).
    """

    def __init__(self, *args, seg_pad_val: int = 255, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seg_pad_val = check_seg_pad_val(seg_pad_val, 'MaskAwareShear')

    def transform(self, results: Dict) -> Dict:
        """Shears the image and its label maps by one random factor (or leaves them, with ``1 - prob``).

        Raises:
            KeyError, ValueError: See :func:`~.mask_aware_functional.seg_keys`.
        """
        keys = seg_keys(results, 'MaskAwareShear')
        if self.random_disable():
            return results
        magnitude = self.random_negative(
            self.magnitude if self.magnitude is not None else self.random_magnitude())
        img = results['img']
        results['img'] = mmcv.imshear(img, magnitude, direction=self.direction, border_value=self.pad_val,
                                      interpolation=self.interpolation).astype(img.dtype)
        for key in keys:
            results[key] = shear_seg(results[key], magnitude, direction=self.direction, pad_val=self.seg_pad_val)
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1].rstrip(', ') + f', seg_pad_val={self.seg_pad_val})'
