"""mmpretrain's RandAugment ``Rotate`` that also rotates the label maps (registered in mmseg's TRANSFORMS).

A geometric op of MCTformer's timm RandAugment; the label-map handling is
:class:`.MaskAwareMixin`'s, the label maths :mod:`.mask_aware_functional`.
"""
import mmcv
import numpy as np
from mmpretrain.datasets.transforms import Rotate

from mmseg.registry import TRANSFORMS

from .mask_aware_functional import rotate_seg
from .mask_aware_mixin import MaskAwareMixin

__all__ = ['MaskAwareRotate']


@TRANSFORMS.register_module()
class MaskAwareRotate(MaskAwareMixin, Rotate):
    """Rotates the image and, by the same angle, every label map (about the same centre).

    Draws, image maths and label handling: :class:`.MaskAwareMixin` (the output equals mmpretrain's
    ``Rotate`` for the same random state when there are no label maps).

    Args:
        seg_pad_val (int): Label of the pixels rotated in from outside the label map. Defaults to 255 (ignore).
        *args, **kwargs: mmpretrain ``Rotate``'s arguments (``angle`` or ``magnitude_range``, ``center``,
            ``scale``, ``pad_val``, ``prob``, ``random_negative_prob``, ``interpolation``, ...).
    """

    fixed_magnitude_attr = 'angle'

    def move_image(self, img: np.ndarray, angle: float) -> np.ndarray:
        return mmcv.imrotate(img, angle, center=self.center, scale=self.scale, border_value=self.pad_val,
                             interpolation=self.interpolation)

    def move_label(self, label: np.ndarray, angle: float) -> np.ndarray:
        return rotate_seg(label, angle, center=self.center, scale=self.scale, pad_val=self.seg_pad_val)
