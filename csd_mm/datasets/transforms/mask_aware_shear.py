"""mmpretrain's RandAugment ``Shear`` that also shears the label maps (registered in mmseg's TRANSFORMS).

A geometric op of MCTformer's timm RandAugment; the label-map handling is
:class:`.MaskAwareMixin`'s, the label maths :mod:`.mask_aware_functional`.
"""
import mmcv
import numpy as np
from mmpretrain.datasets.transforms import Shear

from mmseg.registry import TRANSFORMS

from .mask_aware_functional import shear_seg
from .mask_aware_mixin import MaskAwareMixin

__all__ = ['MaskAwareShear']


@TRANSFORMS.register_module()
class MaskAwareShear(MaskAwareMixin, Shear):
    """Shears the image and, with the same matrix, every label map.

    Draws, image maths and label handling: :class:`.MaskAwareMixin` (the output equals mmpretrain's
    ``Shear`` for the same random state when there are no label maps).

    Args:
        seg_pad_val (int): Label of the pixels sheared in from outside the label map. Defaults to 255 (ignore).
        *args, **kwargs: mmpretrain ``Shear``'s arguments (``magnitude`` or ``magnitude_range``, ``pad_val``,
            ``prob``, ``direction``, ``random_negative_prob``, ``interpolation``, ...).
    """

    def move_image(self, img: np.ndarray, magnitude: float) -> np.ndarray:
        return mmcv.imshear(img, magnitude, direction=self.direction, border_value=self.pad_val,
                            interpolation=self.interpolation)

    def move_label(self, label: np.ndarray, magnitude: float) -> np.ndarray:
        return shear_seg(label, magnitude, direction=self.direction, pad_val=self.seg_pad_val)
