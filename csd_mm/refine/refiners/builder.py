"""Builds a refiner from its config with :data:`csd_mm.registry.REFINERS`."""
from typing import Callable, Union

import numpy as np

from ...registry import REFINERS

__all__ = ['RefinerType', 'build_refiner']

#: A refiner config (``dict(type=DenseCRFRefiner, ...)``) or a built refiner ``(img, cam, keys) -> mask``.
RefinerType = Union[dict, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]]


def build_refiner(refiner: RefinerType) -> Callable:
    """Builds a refiner config with :data:`~csd_mm.registry.REFINERS` (a callable is returned unchanged).

    Args:
        refiner (dict | callable): Config whose ``type`` is a refiner class or its registered name, or a built
            refiner ``(img RGB uint8 (H, W, 3), cam (K, H, W), keys [K]) -> uint8 (H, W)``.

    Returns:
        callable: The refiner.

    Raises:
        TypeError: ``refiner`` is neither a dict nor a callable.
    """
    if isinstance(refiner, dict):
        return REFINERS.build(refiner)
    if not callable(refiner):
        raise TypeError(f'refiner must be a config dict or a callable (img, cam, keys) -> mask, got '
                        f'{type(refiner).__name__}')
    return refiner
