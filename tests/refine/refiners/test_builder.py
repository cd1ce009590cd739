"""Tests of csd_mm/refine/refiners/builder.py and csd_mm/registry.py: refiners live in REFINERS, not in mmseg's
MODELS, and build from a class or a registered name."""
import numpy as np
import pytest
from mmseg.registry import MODELS

import csd_mm  # noqa: F401
from csd_mm.refine import build_refiner
from csd_mm.refine.refiners import AffinityRandomWalkRefiner, DenseCRFRefiner, IRNBoundaryRefiner, SeedRefiner
from csd_mm.registry import REFINERS

ALL = (AffinityRandomWalkRefiner, DenseCRFRefiner, IRNBoundaryRefiner, SeedRefiner)


@pytest.mark.parametrize('cls', ALL, ids=lambda c: c.__name__)
def test_refiners_are_in_their_own_registry(cls):
    assert REFINERS.get(cls.__name__) is cls
    assert REFINERS.get(f'csd_mm.{cls.__name__}') is cls
    assert cls.__name__ not in MODELS.module_dict  # not nn.Modules


def test_build_refiner_from_class_name_or_instance():
    cam = np.zeros((1, 4, 4), np.float32)
    cam[0, 1:3, 1:3] = 0.9
    img = np.zeros((4, 4, 3), np.uint8)
    by_class = build_refiner(dict(type=SeedRefiner, bg_threshold=0.5))
    by_name = build_refiner(dict(type='SeedRefiner', bg_threshold=0.5))
    assert isinstance(by_class, SeedRefiner) and isinstance(by_name, SeedRefiner)
    np.testing.assert_array_equal(by_class(img, cam, np.array([4])), by_name(img, cam, np.array([4])))
    assert build_refiner(by_class) is by_class
    with pytest.raises(TypeError, match='refiner must be a config dict or a callable'):
        build_refiner(3)
