"""Tests of csd_mm/refine/models/affinity_net.py: a tiny AffinityNet embeds, and its PSA loss backpropagates."""
import pytest
import torch
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import csd_mm  # noqa: F401


def test_embedding_shape(tiny_aff_cfg):
    torch.manual_seed(0)
    model = MODELS.build(tiny_aff_cfg())
    emb = model(torch.randn(2, 3, 32, 32), mode='tensor')
    assert emb.shape == (2, 16, 4, 4)
    assert (emb > -1).all()  # ELU output


def test_loss_backpropagates(tiny_aff_cfg, confident_label_batch):
    torch.manual_seed(0)
    model = MODELS.build(tiny_aff_cfg())
    model.train()
    data = model.data_preprocessor(confident_label_batch(), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_aff', 'aff_bg_pos', 'aff_fg_pos', 'aff_neg'}
    loss = losses['loss_aff']
    assert torch.isfinite(loss) and loss.item() > 0
    expected = losses['aff_bg_pos'] / 4 + losses['aff_fg_pos'] / 4 + losses['aff_neg'] / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    head_grad = model.head.fuse.weight.grad
    stem_grad = next(p.grad for p in model.backbone.parameters() if p.requires_grad)
    assert head_grad is not None and head_grad.abs().sum() > 0
    assert stem_grad is not None and stem_grad.abs().sum() > 0


def test_train_step_lowers_loss(tiny_aff_cfg, confident_label_batch):
    torch.manual_seed(0)
    model = MODELS.build(tiny_aff_cfg())
    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batch = confident_label_batch()
    first = last = None
    for _ in range(8):
        data = model.data_preprocessor(batch, True)
        loss = model(**data, mode='loss')['loss_aff']
        optim.zero_grad()
        loss.backward()
        optim.step()
        first = loss.item() if first is None else first
        last = loss.item()
    assert last < first


def test_loss_needs_labels(tiny_aff_cfg):
    model = MODELS.build(tiny_aff_cfg())
    with pytest.raises(ValueError, match='gt_sem_seg'):
        model(torch.randn(1, 3, 32, 32), [SegDataSample()], mode='loss')
    with pytest.raises(ValueError, match='unknown mode'):
        model(torch.randn(1, 3, 32, 32), mode='bogus')
