"""Registered transform that builds CSD's two pasted views (Yang et al., BMVC 2023; docs/method.md section 3).

The pixel maths is :mod:`csd_mm.datasets.transforms.copy_paste_functional`; this is a thin mmcv
``BaseTransform`` wrapper.
"""
from typing import Dict, Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS

from .copy_paste_functional import paste, soften_mask

__all__ = ['CopyPaste', 'resolve_blend_prob']

_IGNORE = 255


def resolve_blend_prob(soft_edge_sigma: float, random_blend_prob: Optional[float]) -> float:
    """The per-sample probability of a soft-edged paste for the arguments of :class:`CopyPaste`.

    Args:
        soft_edge_sigma (float): Gaussian sigma of the soft edges, ``>= 0`` (0: no soft edges).
        random_blend_prob (float, optional): The asked probability; None for the default: 1.0 when
            ``soft_edge_sigma > 0`` (soft edges on every sample), else 0.0.

    Returns:
        float: The probability in ``[0, 1]``.

    Raises:
        ValueError: The probability is outside ``[0, 1]``, or positive while ``soft_edge_sigma`` is 0 (it
            would silently do nothing).
    """
    if random_blend_prob is None:
        return 1.0 if soft_edge_sigma > 0 else 0.0
    if not 0.0 <= random_blend_prob <= 1.0:
        raise ValueError(f'CopyPaste: random_blend_prob must be in [0, 1] (or None), got {random_blend_prob}')
    if random_blend_prob > 0 and soft_edge_sigma == 0:
        raise ValueError(f'CopyPaste: random_blend_prob={random_blend_prob} has no effect with '
                         'soft_edge_sigma=0; set soft_edge_sigma > 0 (e.g. 3.0) for random blending')
    return float(random_blend_prob)


@TRANSFORMS.register_module()
class CopyPaste(BaseTransform):
    """Aligned copy-paste of the source image's prior regions onto the target image.

    Writes the two views of CSD (docs/method.md section 3)::

        pasted_fg_img = M_fg * src_img + (1 - M_fg) * img      # x_sm^fg
        pasted_bg_img = M_bg * src_img + (1 - M_bg) * img      # x_sm^bg

    Both images must already be augmented to the same crop size, and the masks must share the source
    image's geometry (the pipeline applies the same geometric transforms to ``src_img`` and its masks).

    Masks: value 1 is inside the region, 0 outside, and 255 (what mmseg's ``Pad`` / ``RandomCrop`` write into
    seg fields at padded pixels) counts as outside, so padding is never pasted. Any other value is an error.
    The consumer of ``src_fg_mask`` / ``src_bg_mask`` for the losses must use the same rule
    (``mask == 1``). This transform does not change the masks: with soft edges on, only the pixel blending
    is soft; the masks used by the consistency losses stay hard.

    Required keys: ``img`` (target ``x_m``, ``[H, W, 3]``), ``src_img`` (source ``x_s``, same shape and
    dtype), ``src_fg_mask`` and ``src_bg_mask`` (``uint8 [H, W]``).

    Added keys: ``pasted_fg_img``, ``pasted_bg_img`` (shape and dtype of ``img``).

    Args:
        soft_edge_sigma (float): Gaussian sigma (pixels) of the feathered mask edges (:func:`soften_mask`),
            the paper's "random blending" switch. Defaults to 0.0 (hard paste). Set alone (e.g. ``3.0``,
            ``random_blend_prob`` left at None), every sample is pasted with soft edges.
        random_blend_prob (float, optional): Probability, per sample, of pasting with soft edges; the other
            samples get the hard paste. None (default) means 1.0 when ``soft_edge_sigma > 0`` and 0.0
            otherwise. A value in ``(0, 1)`` mixes hard and soft pastes (one draw from ``np.random`` per
            sample); 0.0 and 1.0 draw nothing. A positive value needs ``soft_edge_sigma > 0``.
    """

    def __init__(self, soft_edge_sigma: float = 0.0, random_blend_prob: Optional[float] = None) -> None:
        if not soft_edge_sigma >= 0:
            raise ValueError(f'CopyPaste: soft_edge_sigma must be >= 0, got {soft_edge_sigma}')
        self.soft_edge_sigma = float(soft_edge_sigma)
        self.random_blend_prob = resolve_blend_prob(self.soft_edge_sigma, random_blend_prob)

    @cache_randomness
    def _draw_soft(self) -> bool:
        """Whether this sample is pasted with soft edges (a random draw only for a probability in (0, 1))."""
        if self.random_blend_prob <= 0:
            return False
        if self.random_blend_prob >= 1:
            return True
        return bool(np.random.rand() < self.random_blend_prob)

    @staticmethod
    def _where(results: Dict) -> str:
        """The images of an item, for the error messages."""
        return (f"target {results.get('img_path', '<unknown image>')}, "
                f"source {results.get('src_img_id', '<unknown image>')}")

    @staticmethod
    def _get(results: Dict, key: str) -> np.ndarray:
        if key not in results:
            raise KeyError(f'CopyPaste needs results[{key!r}] ({CopyPaste._where(results)}); keys present: '
                           f'{sorted(results)}')
        value = results[key]
        if not isinstance(value, np.ndarray):
            raise TypeError(f'CopyPaste: results[{key!r}] must be a numpy array, got {type(value).__name__} '
                            f'({CopyPaste._where(results)})')
        return value

    @staticmethod
    def _region(mask: np.ndarray, key: str, where: str) -> np.ndarray:
        """Hard bool region (value 1) of a 0/1/255 mask; 255 (padding) counts as outside."""
        if mask.dtype == bool:
            return mask
        bad = (mask != 0) & (mask != 1) & (mask != _IGNORE)
        if bad.any():
            raise ValueError(f'CopyPaste: results[{key!r}] must hold 0 (outside), 1 (inside) or 255 (padding), '
                             f'found {np.unique(mask[bad])[:10].tolist()} ({where})')
        return mask == 1

    def _check_shapes(self, img: np.ndarray, src_img: np.ndarray, fg: np.ndarray, bg: np.ndarray,
                      where: str) -> Tuple[int, int]:
        if img.shape != src_img.shape:
            raise ValueError(f"CopyPaste: results['img'] {img.shape} and results['src_img'] {src_img.shape} "
                             f'must have the same shape (crop both views to the same size; {where})')
        if img.dtype != src_img.dtype:
            raise ValueError(f"CopyPaste: results['img'] ({img.dtype}) and results['src_img'] "
                             f'({src_img.dtype}) must have the same dtype ({where})')
        for key, mask in (('src_fg_mask', fg), ('src_bg_mask', bg)):
            if mask.shape != src_img.shape[:2]:
                raise ValueError(f"CopyPaste: results[{key!r}] has shape {mask.shape} but results['src_img'] "
                                 f'has size {src_img.shape[:2]}; the masks must follow the source geometry ({where})')
        return img.shape[0], img.shape[1]

    def transform(self, results: Dict) -> Dict:
        """Adds ``pasted_fg_img`` and ``pasted_bg_img`` to ``results``.

        Args:
            results (dict): Result dict with ``img``, ``src_img``, ``src_fg_mask``, ``src_bg_mask``.

        Returns:
            dict: The same dict with the two pasted views added; unchanged for an item that
            :class:`~csd_mm.datasets.CSDDataset` did not pair (``results['csd_paired']`` is False).
        """
        if results.get('csd_paired', True) is False:
            return results
        img = self._get(results, 'img')
        src_img = self._get(results, 'src_img')
        fg = self._get(results, 'src_fg_mask')
        bg = self._get(results, 'src_bg_mask')
        where = self._where(results)
        self._check_shapes(img, src_img, fg, bg, where)
        fg_region = self._region(fg, 'src_fg_mask', where)
        bg_region = self._region(bg, 'src_bg_mask', where)
        if self._draw_soft():
            fg_blend = soften_mask(fg_region, self.soft_edge_sigma)
            bg_blend = soften_mask(bg_region, self.soft_edge_sigma)
        else:
            fg_blend, bg_blend = fg_region, bg_region
        results['pasted_fg_img'] = paste(img, src_img, fg_blend)
        results['pasted_bg_img'] = paste(img, src_img, bg_blend)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(soft_edge_sigma={self.soft_edge_sigma}, '
                f'random_blend_prob={self.random_blend_prob})')
