"""Tests of csd_mm/refine/refiners/dense_crf_refiner.py: the dense-CRF refiner built from REFINERS."""
import numpy as np
import pytest

import csd_mm  # noqa: F401
from csd_mm.refine.functional import crf_refine_cam
from csd_mm.refine.refiners import DenseCRFRefiner
from csd_mm.registry import REFINERS

H, W, EDGE = 32, 32, 16


def _edge_image():
    """Dark left half, bright right half: the object (right half) ends at column EDGE."""
    x = np.arange(W)[None].repeat(H, 0)
    img = np.where(x >= EDGE, 220, 30).astype(np.uint8)[..., None].repeat(3, axis=2)
    return img, x


def test_refiner_registered_and_config_built():
    img, x = _edge_image()
    cam = (x >= EDGE)[None].astype(np.float32) * 0.8
    refiner = REFINERS.build(dict(type=DenseCRFRefiner, bg_threshold=0.4, n_iters=5))
    mask = refiner(img, cam, np.array([0]))
    np.testing.assert_array_equal(mask, crf_refine_cam(img, cam, np.array([0]), 0.4, n_iters=5))
    conf = REFINERS.build(dict(type=DenseCRFRefiner, confident=True, n_iters=5))(img, cam, np.array([0]))
    assert conf.dtype == np.uint8 and set(np.unique(conf).tolist()) <= {0, 1, 255}
    with pytest.raises(ValueError, match='^DenseCRFRefiner got unknown arguments'):
        DenseCRFRefiner(bogus=1)
