"""mmpretrain's RandAugment ``Translate`` that also shifts the label maps (registered in mmseg's TRANSFORMS).

A geometric op of MCTformer's timm RandAugment (timm's ``TranslateXRel`` / ``TranslateYRel``); the label-map handling is
:class:`.MaskAwareMixin`'s, the label maths :mod:`.mask_aware_functional`.
"""
from typing import Tuple

import mmcv
import numpy as np
from mmpretrain.datasets.transforms import Translate

from mmseg.registry import TRANSFORMS

from .mask_aware_functional import translate_offset, translate_seg
from .mask_aware_mixin import MaskAwareMixin

__all__ = ['MaskAwareTranslate']


@TRANSFORMS.register_module()
class MaskAwareTranslate(MaskAwareMixin, Translate):
    """Translates the image and, by the same offset, every label map.

    The offset is mmpretrain's: magnitude x width (x height for 'vertical').

    Draws, image maths and label handling: :class:`.MaskAwareMixin` (the output equals mmpretrain's
    ``Translate`` for the same random state when there are no label maps).

    Args:
        seg_pad_val (int): Label of the pixels shifted in from outside the label map. Defaults to 255 (ignore).
        *args, **kwargs: mmpretrain ``Translate``'s arguments (``magnitude`` or ``magnitude_range``,
            ``pad_val``, ``prob``, ``direction``, ``random_negative_prob``, ``interpolation``, ...).
    """

    def geometry(self, magnitude: float, img_hw: Tuple[int, int]) -> float:
        return translate_offset(magnitude, img_hw, self.direction)

    def move_image(self, img: np.ndarray, offset: float) -> np.ndarray:
        return mmcv.imtranslate(img, offset, direction=self.direction, border_value=self.pad_val,
                                interpolation=self.interpolation)

    def move_label(self, label: np.ndarray, offset: float) -> np.ndarray:
        return translate_seg(label, offset, direction=self.direction, pad_val=self.seg_pad_val)
