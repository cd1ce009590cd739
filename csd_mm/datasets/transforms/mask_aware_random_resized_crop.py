"""mmpretrain's ``RandomResizedCrop`` that also crops the label maps (registered in mmseg's TRANSFORMS).

The random resized crop of Inception (Szegedy et al., CVPR 2015) as timm / DeiT (Touvron et al., ICML 2021)
and hence MCTformer (Xu et al., CVPR 2022) train with it. In CSD (Yang et al., BMVC 2023) the source image's
prior mask rides along as ``gt_seg_map``; the label maths is :mod:`.mask_aware_functional`.
"""
from typing import Dict

import mmcv
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmseg.registry import TRANSFORMS

from .mask_aware_functional import crop_resize_seg, seg_keys

__all__ = ['MaskAwareRandomResizedCrop']


@TRANSFORMS.register_module()
class MaskAwareRandomResizedCrop(RandomResizedCrop):
    """Random resized crop of the image and, with the same box, of every label map.

    The box is drawn once by mmpretrain's ``rand_crop_params`` (area fraction in ``crop_ratio_range``, log-uniform
    aspect ratio in ``aspect_ratio_range``, 10 attempts then a central crop: timm's
    ``RandomResizedCropAndInterpolation``). The image is cropped and resized with ``interpolation`` /
    ``backend`` exactly as mmpretrain does (so without label maps the output is mmpretrain's, pixel for pixel,
    for the same random state); every label map (``gt_seg_map`` and the ``seg_fields`` keys) is cropped with the
    same box and resized with nearest-neighbour sampling (:func:`~.mask_aware_functional.crop_resize_seg`). No
    pixel comes from outside the image, so no label is invented.

    Required keys: ``img``. Optional keys: ``gt_seg_map``, ``seg_fields`` and the keys it names (``[H, W]``,
    the image's size).

    Modified keys: ``img``, ``img_shape`` (``(h, w)``), ``gt_seg_map`` and the ``seg_fields`` keys.

    Args:
        scale (int | Sequence[int]): Output size, ``(h, w)`` or an int for a square.
        crop_ratio_range (tuple): Range of the crop area over the image area. Defaults to (0.08, 1.0).
        aspect_ratio_range (tuple): Range of the crop's aspect ratio (w / h). Defaults to (3 / 4, 4 / 3).
        max_attempts (int): Draws before falling back to a central crop. Defaults to 10.
        interpolation (str): Image interpolation. Defaults to 'bilinear' (timm / MCTformer: 'bicubic').
        backend (str): Image resize backend, 'cv2' or 'pillow' (timm resizes with PIL). Defaults to 'cv2'.
    """

    def transform(self, results: Dict) -> Dict:
        """Crops and resizes the image and its label maps with one random box.

        Args:
            results (dict): The pipeline's result dict.

        Returns:
            dict: ``results`` with ``img``, ``img_shape`` and the label maps replaced.

        Raises:
            KeyError, ValueError: See :func:`~.mask_aware_functional.seg_keys`.
        """
        keys = seg_keys(results, 'MaskAwareRandomResizedCrop')
        img = results['img']
        top, left, height, width = self.rand_crop_params(img)
        crop = img[top:top + height, left:left + width]  # what mmcv.imcrop returns for a box inside the image
        results['img'] = mmcv.imresize(crop, tuple(self.scale[::-1]), interpolation=self.interpolation,
                                       backend=self.backend)
        for key in keys:
            results[key] = crop_resize_seg(results[key], (top, left, height, width), self.scale)
        results['img_shape'] = results['img'].shape[:2]
        return results
