"""Refiner without refinement: the CAM seed itself (IRN's seed protocol, Ahn et al., CVPR 2019), so a pipeline
can export unrefined seeds as pseudo masks through the same interface as the CRF / random-walk refiners
(Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation", BMVC 2023, report
both seed and mask quality).
"""
import numpy as np
from ...evaluation.functional.seed_sweep import seed_from_cam
from ...registry import REFINERS

__all__ = ['SeedRefiner']


@REFINERS.register_module()
class SeedRefiner:
    """``dict(type=SeedRefiner, bg_threshold=t)``: argmax over ``[t, cam_1 .. cam_K]`` (ties to background).

    Args:
        bg_threshold (float): Constant background score. Defaults to 0.15 (IRN's ``cam_eval_thres``); the
            threshold sweep of :mod:`csd_mm.evaluation` picks the best one per model.
    """

    def __init__(self, bg_threshold: float = 0.15) -> None:
        self.bg_threshold = float(bg_threshold)

    def __call__(self, img: np.ndarray, cam: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Returns the ``uint8 (H, W)`` seed of one image (``img`` is not used)."""
        return seed_from_cam(cam, keys, self.bg_threshold)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(bg_threshold={self.bg_threshold})'
