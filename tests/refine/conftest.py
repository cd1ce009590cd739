"""Shared fixtures of the refine tests."""
import pytest
import torch
from mmengine.structures import PixelData
from mmpretrain.models import ResNet
from mmseg.structures import SegDataSample

import csd_mm  # noqa: F401
from csd_mm.refine.models import AffinityNet


def tiny_affinity_net_cfg(**kwargs) -> dict:
    """A narrow ResNet-18 AffinityNet whose stages 2-4 are all at 1/8 (stride pattern of PSA's ResNet-38)."""
    cfg = dict(type=AffinityNet,
               backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=8, strides=(1, 2, 1, 1),
                             out_indices=(1, 2, 3), norm_eval=False),
               in_channels=(16, 32, 64), mid_channels=(4, 8, 8), embed_channels=16, radius=3)
    cfg.update(kwargs)
    return cfg


@pytest.fixture
def checkpoint_reads(monkeypatch) -> list:
    """The files mmengine's CheckpointLoader reads during the test, in order (the real loader runs; each call is
    noted first), to check that a checkpoint is read once, not once to check it and again to load it."""
    from mmengine.runner.checkpoint import CheckpointLoader
    reads, load = [], CheckpointLoader.load_checkpoint  # a bound classmethod

    def noted(cls, filename, *args, **kwargs):
        reads.append(filename)
        return load(filename, *args, **kwargs)

    monkeypatch.setattr(CheckpointLoader, 'load_checkpoint', classmethod(noted))
    return reads


@pytest.fixture
def tiny_aff_cfg():
    """Config factory of a tiny AffinityNet (call it, optionally with overrides)."""
    return tiny_affinity_net_cfg


def confident_label_inputs(n: int = 2, size: int = 32) -> dict:
    """A model input batch: ``n`` random uint8 images and confident label maps (bg left, class ``1 + i`` right,
    a 255 band), as AffinityLabelDataset packs them."""
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g) for _ in range(n)]
    samples = []
    for i in range(n):
        label = torch.zeros(1, size, size, dtype=torch.long)
        label[:, :, size // 2:] = 1 + i
        label[:, size // 4:size // 2, :] = 255
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture
def confident_label_batch():
    """Factory of a batch with confident label maps (call it, optionally with ``n`` / ``size``)."""
    return confident_label_inputs
