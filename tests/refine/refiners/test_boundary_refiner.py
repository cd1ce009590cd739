"""Tests of csd_mm/refine/refiners/boundary_refiner.py: IRN's boundary random-walk refiner, with a tiny
BoundaryNet and with a module whose boundary map is fixed (so a boundary between two regions is known)."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.runner import save_checkpoint
from mmpretrain.models import ResNet
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS

import csd_mm  # noqa: F401
from csd_mm.refine.models import BoundaryNet
from csd_mm.refine.refiners import IRNBoundaryRefiner
from csd_mm.registry import REFINERS

TINY = dict(type=BoundaryNet,
            backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=8, strides=(1, 2, 2, 1),
                          out_indices=(0, 1, 2, 3), norm_eval=False),
            in_channels=(8, 8, 16, 32, 64), mid_channels=8, num_groups=4, freeze_backbone=False, radius=3)


class FixedBoundary(nn.Module):
    """Stand-in for a trained BoundaryNet: the same boundary logits (at 1/4 of a 32x32 input) for every image."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.data_preprocessor = SegDataPreProcessor(mean=[0., 0., 0.], std=[1., 1., 1.], size_divisor=16)
        self.register_buffer('logits', logits)

    def boundary_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        assert inputs.shape[-2:] == (32, 32)
        return self.logits.expand(inputs.shape[0], 1, *self.logits.shape)


def _image_and_cam(h=40, w=44):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    cam = np.zeros((2, h, w), np.float32)
    cam[0, 5:20, 5:20] = 0.9
    cam[1, 20:35, 25:40] = 0.8
    return img, cam


def test_refiner_outputs_mask_values_and_scores():
    torch.manual_seed(0)
    refiner = REFINERS.build(dict(type=IRNBoundaryRefiner, model=TINY, exp_times=4))
    img, cam = _image_and_cam()  # 40x44: padded to 48x48, boundary map cropped to 10x11
    bnd, stride = refiner.boundary(img)
    assert stride == 4 and bnd.shape == (10, 11) and (bnd > 0).all() and (bnd < 1).all()
    mask = refiner(img, cam, np.array([2, 7]))
    assert mask.dtype == np.uint8 and mask.shape == (40, 44)
    assert set(np.unique(mask).tolist()) <= {0, 3, 8}
    scores = refiner.scores(img, cam)
    assert scores.shape == (3, 40, 44) and torch.isfinite(scores).all()
    torch.testing.assert_close(scores[0], torch.full((40, 44), 0.25))  # IRN's constant background
    assert scores[1:].max().item() == pytest.approx(1.0)  # normalised by the maximum
    # no classes: all background
    assert not refiner(img, np.zeros((0, 40, 44), np.float32), np.zeros(0, np.int64)).any()


def test_a_boundary_stops_the_walk():
    logits = torch.full((8, 8), -20.0)
    logits[:, 4] = 20.0  # a wall of boundary between pixel columns 16 and 19
    img = np.zeros((32, 32, 3), np.uint8)
    cam = np.zeros((1, 32, 32), np.float32)
    cam[0, 8:24, 0:12] = 1.0  # an object left of the wall
    keys = np.array([3])
    walled = IRNBoundaryRefiner(FixedBoundary(logits), flip=False, radius=5)
    mask = walled(img, cam, keys)
    assert np.all(mask[:, :12] == 4)  # the walk fills the left side
    assert np.all(mask[:, 22:] == 0)  # and nothing leaks across the wall
    scores = walled.scores(img, cam)
    assert torch.all(scores[1, :, 22:] == 0)
    # control: without the wall the object's score spreads over the whole image
    open_mask = IRNBoundaryRefiner(FixedBoundary(torch.full((8, 8), -20.0)), flip=False, radius=5)(img, cam, keys)
    assert np.all(open_mask[:, 22:] == 4)


def test_flip_averages_the_logits():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 8, generator=g) * 3
    img = np.zeros((30, 27, 3), np.uint8)  # padded to 32x32; the map is cropped to ceil(30/4) x ceil(27/4)
    bnd, stride = IRNBoundaryRefiner(FixedBoundary(logits), flip=True).boundary(img)
    assert stride == 4
    torch.testing.assert_close(bnd, torch.sigmoid((logits + logits.flip(-1)) / 2)[:8, :7])
    bnd, _ = IRNBoundaryRefiner(FixedBoundary(logits), flip=False).boundary(img)
    torch.testing.assert_close(bnd, torch.sigmoid(logits)[:8, :7])


def test_checkpoint_is_loaded(tmp_path, checkpoint_reads):
    torch.manual_seed(0)
    model = MODELS.build(TINY)
    ckpt = tmp_path / 'irn.pth'
    save_checkpoint(dict(state_dict=model.state_dict(), meta=dict()), str(ckpt))
    torch.manual_seed(1)  # a different initialisation, overwritten by the checkpoint
    refiner = IRNBoundaryRefiner(TINY, checkpoint=str(ckpt))
    assert checkpoint_reads == [str(ckpt)]  # read once: the checked state dict is the one loaded
    for name, value in model.state_dict().items():
        torch.testing.assert_close(refiner.model.state_dict()[name], value)


def test_bad_input():
    refiner = IRNBoundaryRefiner(FixedBoundary(torch.zeros(8, 8)))
    img, cam = np.zeros((32, 32, 3), np.uint8), np.zeros((2, 32, 32), np.float32)
    with pytest.raises(ValueError, match='image size'):
        refiner(img, cam[:, :10], np.array([2, 7]))
    with pytest.raises(ValueError, match='disagree'):
        refiner(img, cam, np.array([2]))
    with pytest.raises(ValueError, match='uint8'):
        refiner(img.astype(np.float32), cam, np.array([2, 7]))
    with pytest.raises(ValueError, match='keys must be'):
        refiner(img, cam, np.array([2, 300]))
    with pytest.raises(ValueError, match='NaN'):
        refiner(img, np.full((2, 32, 32), np.nan, np.float32), np.array([2, 7]))
    with pytest.raises(TypeError, match='boundary_logits'):
        IRNBoundaryRefiner(nn.Conv2d(3, 1, 1))


def test_img_scale_gives_a_finer_map():
    logits = torch.full((8, 8), -20.0)
    img = np.zeros((16, 16, 3), np.uint8)  # enlarged 2x to 32x32: the 8x8 map has 2x2-pixel cells
    refiner = IRNBoundaryRefiner(FixedBoundary(logits), flip=False, img_scale=2)
    bnd, cell = refiner.boundary(img)
    assert cell == 2 and bnd.shape == (8, 8)
    cam = np.zeros((1, 16, 16), np.float32)
    cam[0, 4:12, 4:12] = 1.0
    scores = refiner.scores(img, cam)
    assert scores.shape == (2, 16, 16)
    with pytest.raises(ValueError, match='multiple of img_scale'):
        IRNBoundaryRefiner(FixedBoundary(logits), img_scale=3).boundary(np.zeros((10, 10, 3), np.uint8))
