"""Tests of csd_mm/refine/refiners/affinity_refiner.py: the PSA random-walk refiner with a tiny AffinityNet, and
with a module whose embedding makes the walk the identity (so the pooled CAM grid is known)."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.runner import save_checkpoint
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS

import csd_mm  # noqa: F401
from csd_mm.refine.functional import upsample_from_grid
from csd_mm.refine.refiners import AffinityRandomWalkRefiner
from csd_mm.registry import REFINERS


class DistinctEmbedding(nn.Module):
    """Stand-in for a trained AffinityNet of stride 8: every position gets its own far-away feature (a scaled one-hot),
    so every affinity ``exp(-mean |f_i - f_j|) ** beta`` is 0 and the walk leaves the label scores as they are."""

    def __init__(self, padded_size) -> None:
        super().__init__()
        self.data_preprocessor = SegDataPreProcessor(mean=[0., 0., 0.], std=[1., 1., 1.])
        self.padded_size = tuple(padded_size)
        self.radius = 5

    def extract_embedding(self, inputs: torch.Tensor) -> torch.Tensor:
        assert tuple(inputs.shape[-2:]) == self.padded_size  # the image reaches the model padded to 8
        h, w = inputs.shape[-2] // 8, inputs.shape[-1] // 8
        return 1000.0 * torch.eye(h * w).reshape(1, h * w, h, w)


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


def test_refiner_constant_background_and_checkpoint(tmp_path, tiny_aff_cfg, checkpoint_reads):
    torch.manual_seed(0)
    model = MODELS.build(tiny_aff_cfg())
    ckpt = tmp_path / 'aff.pth'
    save_checkpoint(dict(state_dict=model.state_dict(), meta=dict()), str(ckpt))
    torch.manual_seed(1)  # a different initialisation, overwritten by the checkpoint
    refiner = AffinityRandomWalkRefiner(tiny_aff_cfg(), checkpoint=str(ckpt), logt=3, bg_threshold=0.3)
    assert checkpoint_reads == [str(ckpt)]  # read once: the checked state dict is the one loaded
    for name, value in model.state_dict().items():
        torch.testing.assert_close(refiner.model.state_dict()[name], value)
    img, cam = _image_and_cam()
    scores = refiner.scores(img, cam)
    # the walk averages, so a constant background score stays constant (bilinear upsampling keeps it too)
    torch.testing.assert_close(scores[0], torch.full((40, 48), 0.3), atol=1e-5, rtol=0)


def test_odd_sized_image_keeps_each_grid_cell_on_its_8x8_block():
    # 44 x 52 is padded to 48 x 56: a 6 x 7 grid of 8x8 blocks (PSA); unpadded, 44 / 6 = 7.3-pixel bins would drift
    img = np.zeros((44, 52, 3), np.uint8)
    cam = np.zeros((2, 44, 52), np.float32)
    cam[0, 16:24, 8:16] = 0.9  # exactly block (2, 1)
    cam[1, 40:44, 48:52] = 0.8  # the bottom-right corner: the in-image quarter of block (5, 6)
    refiner = AffinityRandomWalkRefiner(DistinctEmbedding((48, 56)), beta=8, logt=4, alpha=16)
    # the pooled grid by hand: bg = (1 - max cam) ** 16 is 1 off the blocks, ~0 on them; padding counts as 0
    grid = torch.zeros(3, 6, 7)
    grid[0] = 1.0
    grid[0, 5, :] = 0.5  # rows 40-43 of 40-47 are in the image
    grid[0, :, 6] = 0.5  # columns 48-51 of 48-55
    grid[0, 5, 6] = 16 * 0.2**16 / 64  # its 16 in-image pixels are all hot
    grid[0, 2, 1] = 0.1**16
    grid[1, 2, 1] = 0.9
    grid[2, 5, 6] = 16 * 0.8 / 64  # 0.2: less than a full block, but the background there is padding
    scores = refiner.scores(img, cam)
    assert scores.shape == (3, 44, 52)
    torch.testing.assert_close(scores, upsample_from_grid(grid, 8, (44, 52)), atol=1e-6, rtol=1e-5)
    mask = refiner(img, cam, np.array([2, 5]))
    assert (mask[19:21, 11:13] == 3).all()  # the centre of block (2, 1)
    assert (mask[43, 50:52] == 6).all() and (mask[42:44, 51] == 6).all()  # the corner keeps its class
    assert mask[0, 0] == 0 and mask[30, 30] == 0


class RecordingEmbedding(DistinctEmbedding):
    """:class:`DistinctEmbedding` that keeps the network input it was given."""

    def extract_embedding(self, inputs: torch.Tensor) -> torch.Tensor:
        self.inputs = inputs
        return super().extract_embedding(inputs)


def test_the_image_is_normalised_then_padded_with_zeros():
    # PSA pads the normalised image with 0s; padding the raw image with 0s would give (0 - 100) / 2 = -50 there
    model = RecordingEmbedding((16, 24))
    model.data_preprocessor = SegDataPreProcessor(mean=[100., 100., 100.], std=[2., 2., 2.], bgr_to_rgb=True)
    img = np.zeros((13, 20, 3), np.uint8)
    img[..., 0] = 110  # red: (110 - 100) / 2 = 5 in the first (RGB) channel
    img[..., 2] = 90  # blue: -5
    AffinityRandomWalkRefiner(model, logt=1).scores(img, np.zeros((1, 13, 20), np.float32))
    expected = torch.zeros(1, 3, 16, 24)
    expected[0, 0, :13, :20] = 5.0
    expected[0, 1, :13, :20] = -50.0
    expected[0, 2, :13, :20] = -5.0
    torch.testing.assert_close(model.inputs, expected)


def test_tiny_affinity_net_on_an_odd_sized_image(tiny_aff_cfg):
    torch.manual_seed(0)
    refiner = AffinityRandomWalkRefiner(MODELS.build(tiny_aff_cfg()), logt=3)
    img, cam = _image_and_cam(37, 45)
    scores = refiner.scores(img, cam)
    assert scores.shape == (3, 37, 45) and torch.isfinite(scores).all()
    assert refiner(img, cam, np.array([2, 7])).shape == (37, 45)
    with pytest.raises(ValueError, match=r'the map \(5, 6\) is not the padded input \(37, 45\)'):
        AffinityRandomWalkRefiner(MODELS.build(tiny_aff_cfg()), size_divisor=1).scores(img, cam)
