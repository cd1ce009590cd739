"""Decodes a source image's prior mask into CSD's foreground / background masks (registered transform).

Cross-domain Semantic Decoupling (Yang et al., BMVC 2023) stores, for every single-label source image, one prior
mask in the source bank (docs/method.md section 1): 1 = foreground M_fg, 0 = background M_bg, 255 = unsure. The
source pipeline loads it as ``gt_seg_map`` (so every geometric transform moves it with the image; padding adds
255) and this transform, last in the source pipeline, splits it into the two masks the paste and the losses use.
"""
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

__all__ = ['DecodePriorMask']

_FG, _BG, _UNSURE = 1, 0, 255


@TRANSFORMS.register_module()
class DecodePriorMask(BaseTransform):
    """Splits the prior mask ``gt_seg_map`` (1 fg / 0 bg / 255 unsure or padding) into ``fg_mask`` and ``bg_mask``.

    Required keys: ``gt_seg_map`` (``[H, W]`` integer map).

    Added keys: ``fg_mask`` and ``bg_mask`` (``uint8 [H, W]``: 1 inside, 0 outside; unsure and padding pixels are
    in neither).

    Raises:
        KeyError: ``gt_seg_map`` is missing (the source pipeline must load the bank mask with LoadAnnotations).
        ValueError: The map holds another value (not a source-bank mask) or its size differs from ``img``'s;
            names ``seg_map_path``.
    """

    def transform(self, results: Dict) -> Dict:
        if 'gt_seg_map' not in results:
            raise KeyError(f'DecodePriorMask needs the prior mask as gt_seg_map (LoadAnnotations) for '
                           f'{results.get("img_path", "<unknown image>")}')
        prior = np.asarray(results['gt_seg_map'])
        if 'img' in results and prior.shape[:2] != results['img'].shape[:2]:
            raise ValueError(f'{results.get("seg_map_path", "<unknown mask>")}: the source-bank prior mask has size '
                             f'{prior.shape[:2]} but its image {results.get("img_path", "<unknown image>")} has '
                             f'{results["img"].shape[:2]} (a bank built from other images?)')
        bad = (prior != _FG) & (prior != _BG) & (prior != _UNSURE)
        if bad.any():
            raise ValueError(f'{results.get("seg_map_path", "<unknown mask>")}: a source-bank prior mask holds 1 '
                             f'(fg), 0 (bg) or 255 (unsure), found {np.unique(prior[bad])[:10].tolist()}')
        results['fg_mask'] = (prior == _FG).astype(np.uint8)
        results['bg_mask'] = (prior == _BG).astype(np.uint8)
        return results
