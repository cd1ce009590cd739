"""Refiner: CAMs of one image -> dense-CRF pseudo mask (PSA, Ahn & Kwak, CVPR 2018; MCTformer, Xu et al.,
CVPR 2022), the refinement of the CRF pseudo masks of Yang et al., "Cross-domain Semantic Decoupling for
Weakly-Supervised Semantic Segmentation" (BMVC 2023). The maths is in :mod:`csd_mm.refine.functional.crf`.
"""
from typing import Optional

import numpy as np

from ...registry import REFINERS
from ..functional.crf import confident_regions, crf_refine_cam

__all__ = ['DenseCRFRefiner']


@REFINERS.register_module()
class DenseCRFRefiner:
    """Refiner: CAMs of one image -> dense-CRF pseudo mask (a thin wrapper of
    :func:`~csd_mm.refine.functional.crf.crf_refine_cam`).

    Config: ``dict(type=DenseCRFRefiner, bg_threshold=None, alpha=16., n_iters=10, ...)``.

    Args:
        bg_threshold (float, optional): Constant background score; None (default) uses PSA's
            ``(1 - max cam) ** alpha``.
        alpha (float): Background power. Defaults to 16 (PSA).
        confident (bool): Output :func:`~csd_mm.refine.functional.crf.confident_regions` (255 where unsure)
            instead of a full mask. Defaults to False.
        low_alpha (float): Strong-background power in confident mode. Defaults to 4 (PSA).
        high_alpha (float): Weak-background power in confident mode. Defaults to 32 (PSA).
        **crf_kwargs: Kernel parameters of :func:`~csd_mm.refine.functional.crf.dense_crf` (``n_iters``,
            ``pos_xy_std``, ``pos_w``, ``bi_xy_std``, ``bi_rgb_std``, ``bi_w``); the missing ones are PSA's
            (and MCTformer's): 10 iterations, Gaussian 3 / 3, bilateral 80 / 13 / 10.
    """

    _CRF_KEYS = ('n_iters', 'pos_xy_std', 'pos_w', 'bi_xy_std', 'bi_rgb_std', 'bi_w')

    def __init__(self,
                 bg_threshold: Optional[float] = None,
                 alpha: float = 16.0,
                 confident: bool = False,
                 low_alpha: float = 4.0,
                 high_alpha: float = 32.0,
                 **crf_kwargs) -> None:
        unknown = set(crf_kwargs) - set(self._CRF_KEYS)
        if unknown:
            raise ValueError(f'DenseCRFRefiner got unknown arguments {sorted(unknown)}; CRF '
                             f'parameters are {list(self._CRF_KEYS)}')
        self.bg_threshold = bg_threshold
        self.alpha = alpha
        self.confident = confident
        self.low_alpha = low_alpha
        self.high_alpha = high_alpha
        self.crf_kwargs = crf_kwargs

    def __call__(self, img: np.ndarray, cam: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Returns the ``uint8 (H, W)`` mask of one image (``img`` RGB uint8, ``cam`` (K, H, W), ``keys``)."""
        if self.confident:
            return confident_regions(img, cam, keys, self.low_alpha, self.high_alpha, **self.crf_kwargs)
        return crf_refine_cam(img, cam, keys, self.bg_threshold, self.alpha, **self.crf_kwargs)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(bg_threshold={self.bg_threshold}, alpha={self.alpha}, '
                f'confident={self.confident}, crf={self.crf_kwargs})')
