"""Tests of csd_mm/engine/hooks/finite_loss_hook.py: a real Runner stops at a non-finite loss."""
import math
import os
import os.path as osp

import pytest
import torch
from mmengine.dataset import DefaultSampler
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

from csd_mm.engine.hooks import FiniteLossHook
from csd_mm.engine.hooks.finite_loss_hook import non_finite_losses


def test_non_finite_losses_by_hand():
    assert non_finite_losses(dict(loss=torch.tensor(0.5), loss_cls=1.0)) == {}
    bad = non_finite_losses(dict(loss=torch.tensor(float('nan')), loss_cls=torch.tensor(float('inf')),
                                 loss_kl=0.1, acc=float('nan')))  # not a loss: not checked
    assert list(bad) == ['loss', 'loss_cls'] and math.isnan(bad['loss']) and bad['loss_cls'] == math.inf
    assert non_finite_losses(None) == {}


def _runner(parts, root, classes, work_dir, loss_weight):
    model, dataset = parts(root, classes, loss_weight)
    return Runner(
        model=model, work_dir=str(work_dir), experiment_name=osp.basename(str(work_dir)),
        train_dataloader=dict(batch_size=4, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=False),
                              dataset=dataset),
        train_cfg=dict(by_epoch=False, max_iters=3),
        optim_wrapper=dict(optimizer=dict(type=torch.optim.SGD, lr=0.01)),
        default_hooks=dict(checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=1), logger=None,
                           finite_loss=dict(type=FiniteLossHook)),
        default_scope=None, randomness=dict(seed=0))


def test_runner_stops_at_the_first_non_finite_loss_without_a_checkpoint(tiny_toy_voc, tiny_cam_parts, tmp_path):
    root, classes = tiny_toy_voc
    # a config option makes the loss non-finite: the head's loss weight
    runner = _runner(tiny_cam_parts, root, classes, tmp_path / 'nan', loss_weight=float('nan'))
    with pytest.raises(FloatingPointError, match=r'FiniteLossHook: training stopped at iteration 1 \(epoch 1, '
                                                 r'batch 1\): non-finite loss loss=nan, loss_cls=nan'):
        runner.train()
    assert not [f for f in os.listdir(tmp_path / 'nan') if f.endswith('.pth')]
    runner = _runner(tiny_cam_parts, root, classes, tmp_path / 'ok', loss_weight=1.0)
    runner.train()  # a finite loss trains through
    assert osp.isfile(tmp_path / 'ok' / 'iter_3.pth')
