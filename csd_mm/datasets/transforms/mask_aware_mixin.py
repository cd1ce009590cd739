"""The label-map handling shared by the mask-aware RandAugment ops (``MaskAwareRotate`` / ``Shear`` / ``Translate``).

Each op subclasses mmpretrain's transform of the same name for its random draws and its image maths, and this
mixin for the rest: the ``seg_pad_val`` argument, collecting and checking the label maps, applying one drawn
geometry to the image and to every label map, and the ``repr``. An op only says how to read its fixed
magnitude and how to move an image and a label map (with the functions of :mod:`.mask_aware_functional`).
"""
from typing import Dict, Tuple

import numpy as np

from .mask_aware_functional import check_seg_pad_val, seg_keys

__all__ = ['MaskAwareMixin']


class MaskAwareMixin:
    """Moves the label maps with the image in a RandAugment geometric op (put it before the mmpretrain class).

    The random draws are the mmpretrain op's, in its order: apply with ``prob`` (``random_disable``), the
    magnitude (the fixed one, else ``random_magnitude``), its sign (``random_negative``); so without label maps
    the output equals the mmpretrain op's pixel for pixel for the same random state. Every label map
    (``gt_seg_map`` and the ``seg_fields`` keys, ``[H, W]`` at the image's size) gets the same geometry with
    nearest-neighbour sampling; the pixels brought in from outside get ``seg_pad_val``.

    A subclass sets ``fixed_magnitude_attr`` (the attribute holding the op's fixed magnitude, None when it draws
    one) and implements :meth:`move_image` and :meth:`move_label`; :meth:`geometry` turns the signed magnitude
    into what both move by (the magnitude itself unless overridden).

    Args:
        seg_pad_val (int): Label of the pixels brought in from outside the label map. Defaults to 255 (ignore).
        *args, **kwargs: The mmpretrain op's arguments.
    """

    fixed_magnitude_attr = 'magnitude'

    def __init__(self, *args, seg_pad_val: int = 255, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seg_pad_val = check_seg_pad_val(seg_pad_val, type(self).__name__)

    def geometry(self, magnitude: float, img_hw: Tuple[int, int]) -> float:
        """What the image and the label maps are moved by, for a signed magnitude and the image size."""
        return magnitude

    def move_image(self, img: np.ndarray, geometry: float) -> np.ndarray:
        """The image moved by ``geometry`` (the mmpretrain op's image maths)."""
        raise NotImplementedError

    def move_label(self, label: np.ndarray, geometry: float) -> np.ndarray:
        """A label map moved by ``geometry`` (nearest neighbour, ``self.seg_pad_val`` brought in)."""
        raise NotImplementedError

    def transform(self, results: Dict) -> Dict:
        """Moves the image and its label maps by one random draw (or leaves them, with ``1 - prob``).

        Raises:
            KeyError, ValueError: See :func:`~.mask_aware_functional.seg_keys`.
        """
        keys = seg_keys(results, type(self).__name__)
        if self.random_disable():
            return results
        fixed = getattr(self, self.fixed_magnitude_attr)
        magnitude = self.random_negative(fixed if fixed is not None else self.random_magnitude())
        img = results['img']
        geometry = self.geometry(magnitude, img.shape[:2])
        results['img'] = self.move_image(img, geometry).astype(img.dtype)
        for key in keys:
            results[key] = self.move_label(results[key], geometry)
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1].rstrip(', ') + f', seg_pad_val={self.seg_pad_val})'
