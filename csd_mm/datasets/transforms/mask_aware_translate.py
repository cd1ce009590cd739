"""mmpretrain's RandAugment ``Translate`` that also shifts the label maps (registered in mmseg's TRANSFORMS).

One of the geometric ops of RandAugment (Cubuk et al., NeurIPS 2020) in timm's 'rand-m9-mstd0.5-inc1' policy
(``TranslateXRel`` / ``TranslateYRel``), which MCTformer (Xu et al., CVPR 2022) trains with. In CSD (Yang et al.,
BMVC 2023) the source image's prior mask rides along as ``gt_seg_map``; the label maths is
:mod:`.mask_aware_functional`.
"""
from typing import Dict

import mmcv
from mmpretrain.datasets.transforms import Translate

from mmseg.registry import TRANSFORMS

from .mask_aware_functional import check_seg_pad_val, seg_keys, translate_offset, translate_seg

__all__ = ['MaskAwareTranslate']


@TRANSFORMS.register_module()
class MaskAwareTranslate(Translate):
    """Translates the image and, by the same offset, every label map.

    The random draws (apply with ``prob``, magnitude, sign) and the image translation are mmpretrain's
    ``Translate``'s, in the same order (offset = magnitude x width, or x height for 'vertical'), so without
    label maps the output equals mmpretrain's pixel for pixel for the same random state. Every label map
    (``gt_seg_map`` and the ``seg_fields`` keys) is shifted by the same offset with nearest-neighbour sampling;
    the band shifted in from outside gets ``seg_pad_val``.

    Required keys: ``img``. Optional keys: ``gt_seg_map``, ``seg_fields`` and the keys it names (``[H, W]``,
    the image's size).

    Modified keys: ``img``, ``gt_seg_map`` and the ``seg_fields`` keys.

    Args:
        seg_pad_val (int): Label of the pixels shifted in from outside the label map. Defaults to 255 (ignore).
        *args, **kwargs: mmpretrain ``Translate``'s arguments (``magnitude`` or ``magnitude_range``,
            ``pad_val``, ``prob``, ``direction``, ``random_negative_prob``, ``interpolation``, ...).
    """

    def __init__(self, *args, seg_pad_val: int = 255, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seg_pad_val = check_seg_pad_val(seg_pad_val, 'MaskAwareTranslate')

    def transform(self, results: Dict) -> Dict:
        """Shifts the image and its label maps by one random offset (or leaves them, with ``1 - prob``).

        Raises:
            KeyError, ValueError: See :func:`~.mask_aware_functional.seg_keys`.
        """
        keys = seg_keys(results, 'MaskAwareTranslate')
        if self.random_disable():
            return results
        magnitude = self.random_negative(
            self.magnitude if self.magnitude is not None else self.random_magnitude())
        img = results['img']
        offset = translate_offset(magnitude, img.shape[:2], self.direction)
        results['img'] = mmcv.imtranslate(img, offset, direction=self.direction, border_value=self.pad_val,
                                          interpolation=self.interpolation).astype(img.dtype)
        for key in keys:
            results[key] = translate_seg(results[key], offset, direction=self.direction, pad_val=self.seg_pad_val)
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1].rstrip(', ') + f', seg_pad_val={self.seg_pad_val})'
