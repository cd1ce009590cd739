"""Tests of csd_mm/refine/refiners/affinity_refiner.py: the PSA random-walk refiner with a tiny AffinityNet."""
import numpy as np
import pytest
import torch
from mmengine.runner import save_checkpoint
from mmseg.registry import MODELS

import csd_mm  # noqa: F401
from csd_mm.refine.refiners import AffinityRandomWalkRefiner
from csd_mm.registry import REFINERS


def _image_and_cam(h=40, w=48):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    cam = np.zeros((2, h, w), np.float32)
    cam[0, 5:20, 5:20] = 0.9
    cam[1, 20:35, 25:45] = 0.8
    return img, cam


def test_refiner_outputs_mask_values(tiny_aff_cfg):
    torch.manual_seed(0)
    refiner = REFINERS.build(dict(type=AffinityRandomWalkRefiner, model=tiny_aff_cfg(), beta=8, logt=4))
    img, cam = _image_and_cam()
    mask = refiner(img, cam, np.array([2, 7]))
    assert mask.dtype == np.uint8 and mask.shape == (40, 48)
    assert set(np.unique(mask).tolist()) <= {0, 3, 8}
    scores = refiner.scores(img, cam)
    assert scores.shape == (3, 40, 48) and torch.isfinite(scores).all()
    # no classes: all background
    assert not refiner(img, np.zeros((0, 40, 48), np.float32), np.zeros(0, np.int64)).any()
    with pytest.raises(ValueError, match='image size'):
        refiner(img, cam[:, :10], np.array([2, 7]))


def test_refiner_constant_background_and_checkpoint(tmp_path, tiny_aff_cfg):
    torch.manual_seed(0)
    model = MODELS.build(tiny_aff_cfg())
    ckpt = tmp_path / 'aff.pth'
    save_checkpoint(dict(state_dict=model.state_dict(), meta=dict()), str(ckpt))
    torch.manual_seed(1)  # a different initialisation, overwritten by the checkpoint
    refiner = AffinityRandomWalkRefiner(tiny_aff_cfg(), checkpoint=str(ckpt), logt=3, bg_threshold=0.3)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(refiner.model.state_dict()[name], value)
    img, cam = _image_and_cam()
    scores = refiner.scores(img, cam)
    # the walk averages, so a constant background score stays constant (bilinear upsampling keeps it too)
    torch.testing.assert_close(scores[0], torch.full((40, 48), 0.3), atol=1e-5, rtol=0)
