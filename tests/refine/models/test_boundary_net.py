"""Tests of csd_mm/refine/models/boundary_net.py: a tiny BoundaryNet predicts a boundary map; IRN's loss trains it."""
import pytest
import torch
from mmpretrain.models import ResNet
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import csd_mm  # noqa: F401
from csd_mm.refine.models import BoundaryNet


def tiny_cfg(**kwargs) -> dict:
    """A narrow ResNet-18 with IRN's levels: stem and stages 1-4 at 1/4, 1/4, 1/8, 1/16, 1/16."""
    cfg = dict(type=BoundaryNet,
               backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=8, strides=(1, 2, 2, 1),
                             out_indices=(0, 1, 2, 3), norm_eval=False),
               in_channels=(8, 8, 16, 32, 64), mid_channels=8, num_groups=4, freeze_backbone=False, radius=3)
    cfg.update(kwargs)
    return cfg


def test_boundary_map_shape_and_range():
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg())
    bnd = model(torch.randn(2, 3, 32, 48), mode='tensor')
    assert bnd.shape == (2, 1, 8, 12)  # 1/4 of the input, the stem's resolution
    assert (bnd > 0).all() and (bnd < 1).all()
    samples = model(torch.randn(1, 3, 32, 32), [SegDataSample()], mode='predict')
    assert samples[0].boundary.shape == (1, 8, 8)
    # without the stem level: the finest selected stage sets the size (stage 2 at 1/8)
    model = MODELS.build(tiny_cfg(with_stem=False, in_channels=(16, 32, 64),
                                  backbone=dict(tiny_cfg()['backbone'], out_indices=(1, 2, 3))))
    assert model(torch.randn(1, 3, 32, 32), mode='tensor').shape == (1, 1, 4, 4)


def test_loss_backpropagates_to_head_and_trainable_backbone(confident_label_batch):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg())
    model.train()
    data = model.data_preprocessor(confident_label_batch(), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_aff', 'aff_bg_pos', 'aff_fg_pos', 'aff_neg'}
    loss = losses['loss_aff']
    assert torch.isfinite(loss) and loss.item() > 0
    expected = losses['aff_bg_pos'] / 4 + losses['aff_fg_pos'] / 4 + losses['aff_neg'] / 2  # IRN's weights
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert model.head.fuse.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad.abs().sum() > 0


def test_frozen_backbone_gets_no_gradient_and_stays_in_eval(confident_label_batch):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(freeze_backbone=True))
    model.train()
    assert model.training and not model.backbone.training and model.head.training
    data = model.data_preprocessor(confident_label_batch(), True)
    running = model.backbone.norm1.running_mean.clone()
    model(**data, mode='loss')['loss_aff'].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.head.reduce[0][0].weight.grad.abs().sum() > 0
    torch.testing.assert_close(model.backbone.norm1.running_mean, running)  # batch norms not updated


def test_train_steps_lower_the_loss(confident_label_batch):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg())
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batch = confident_label_batch()
    values = []
    for _ in range(8):
        data = model.data_preprocessor(batch, True)
        loss = model(**data, mode='loss')['loss_aff']
        optim.zero_grad()
        loss.backward()
        optim.step()
        values.append(loss.item())
    assert values[-1] < values[0]


def test_bad_input():
    model = MODELS.build(tiny_cfg())
    with pytest.raises(ValueError, match='gt_sem_seg'):
        model(torch.randn(1, 3, 32, 32), [SegDataSample()], mode='loss')
    with pytest.raises(ValueError, match='unknown mode'):
        model(torch.randn(1, 3, 32, 32), mode='bogus')
    with pytest.raises(ValueError, match='same length'):
        MODELS.build(tiny_cfg(mid_channels=(8, 8, 8)))
    with pytest.raises(ValueError, match='expects 4 feature levels, got 5'):
        MODELS.build(tiny_cfg(in_channels=(8, 8, 16, 32)))(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match='divisible'):
        MODELS.build(tiny_cfg(mid_channels=6))
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(tiny_cfg(pretrained='x.pth',
                              backbone=dict(tiny_cfg()['backbone'], init_cfg=dict(type='Pretrained',
                                                                                  checkpoint='y.pth'))))


def test_pretrained_sets_the_backbone_init_cfg():
    model = MODELS.build(tiny_cfg(pretrained='/local/resnet.pth'))
    assert model.backbone.init_cfg == dict(type='Pretrained', checkpoint='/local/resnet.pth')
