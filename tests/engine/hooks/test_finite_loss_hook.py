"""Tests of csd_mm/engine/hooks/finite_loss_hook.py: a real Runner stops at a non-finite loss."""
import math
import os
import os.path as osp

import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.dataset import DefaultSampler
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner
from mmpretrain.models import ResNet

from csd_mm.datasets import ImageLevelDataset, make_toy_voc
from csd_mm.datasets.transforms import PackCAMInputs
from csd_mm.engine.hooks import FiniteLossHook
from csd_mm.engine.hooks.finite_loss_hook import non_finite_losses
from csd_mm.models.classifiers import CAMClassifier
from csd_mm.models.heads import CAMHead


def test_non_finite_losses_by_hand():
    assert non_finite_losses(dict(loss=torch.tensor(0.5), loss_cls=1.0)) == {}
    bad = non_finite_losses(dict(loss=torch.tensor(float('nan')), loss_cls=torch.tensor(float('inf')),
                                 loss_kl=0.1, acc=float('nan')))  # not a loss: not checked
    assert list(bad) == ['loss', 'loss_cls'] and math.isnan(bad['loss']) and bad['loss_cls'] == math.inf
    assert non_finite_losses(None) == {}


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy'))
    summary = make_toy_voc(root, num_train=8, num_val=2, size=32, seed=5)
    return root, summary['classes']


def _runner(root, classes, work_dir, loss_weight):
    dataset = dict(type=ImageLevelDataset, data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
                   label_file='cls_labels.npy', metainfo=dict(classes=tuple(classes)),
                   pipeline=[dict(type=LoadImageFromFile), dict(type=PackCAMInputs)])
    model = dict(type=CAMClassifier,
                 backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=4, out_indices=(3, )),
                 head=dict(type=CAMHead, in_channels=32, num_classes=len(classes) - 1, loss_weight=loss_weight))
    return Runner(
        model=model, work_dir=str(work_dir), experiment_name=osp.basename(str(work_dir)),
        train_dataloader=dict(batch_size=4, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=False),
                              dataset=dataset),
        train_cfg=dict(by_epoch=False, max_iters=3),
        optim_wrapper=dict(optimizer=dict(type=torch.optim.SGD, lr=0.01)),
        default_hooks=dict(checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=1), logger=None,
                           finite_loss=dict(type=FiniteLossHook)),
        default_scope=None, randomness=dict(seed=0))


def test_runner_stops_at_the_first_non_finite_loss_without_a_checkpoint(toy_root, tmp_path):
    root, classes = toy_root
    # a config option makes the loss non-finite: the head's loss weight
    runner = _runner(root, classes, tmp_path / 'nan', loss_weight=float('nan'))
    with pytest.raises(FloatingPointError, match=r'FiniteLossHook: training stopped at iteration 1 \(epoch 1, '
                                                 r'batch 1\): non-finite loss loss=nan, loss_cls=nan'):
        runner.train()
    assert not [f for f in os.listdir(tmp_path / 'nan') if f.endswith('.pth')]
    runner = _runner(root, classes, tmp_path / 'ok', loss_weight=1.0)
    runner.train()  # a finite loss trains through
    assert osp.isfile(tmp_path / 'ok' / 'iter_3.pth')
