"""Tests of csd_mm/engine/runner/iter_based_train_loop.py: same batches as mmengine's loop, without its pause."""
import os.path as osp

import mmengine.runner.loops as mmengine_loops
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.runner import IterBasedTrainLoop, Runner
from mmengine.runner.loops import _InfiniteDataloaderIterator
from mmpretrain.models import ResNet
from torch.utils.data import DataLoader

from csd_mm.datasets import ImageLevelDataset, make_toy_voc
from csd_mm.datasets.transforms import PackCAMInputs
from csd_mm.engine.runner import NoPauseIterBasedTrainLoop, restarts_worker_processes
from csd_mm.engine.runner.iter_based_train_loop import _NoPauseInfiniteIterator
from csd_mm.models.classifiers import CAMClassifier
from csd_mm.models.heads import CAMHead


class _Sleeps:
    """Stands in for the ``time`` module of mmengine's loops and counts the pauses."""

    def __init__(self) -> None:
        self.calls = []

    def sleep(self, seconds: float) -> None:
        self.calls.append(seconds)

    def __getattr__(self, name):
        import time
        return getattr(time, name)


@pytest.fixture
def sleeps(monkeypatch):
    recorder = _Sleeps()
    monkeypatch.setattr(mmengine_loops, 'time', recorder)
    return recorder


def _loader(**kwargs):
    return DataLoader(list(range(10)), batch_size=4, sampler=DefaultSampler(list(range(10)), shuffle=True, seed=3),
                      collate_fn=pseudo_collate, **kwargs)


def test_restarts_worker_processes():
    assert not restarts_worker_processes(_loader())
    assert not restarts_worker_processes(_loader(num_workers=2, persistent_workers=True))
    assert restarts_worker_processes(_loader(num_workers=2))


def test_same_batches_as_mmengine_over_epochs_without_the_pause(sleeps):
    torch.manual_seed(0)
    reference = _InfiniteDataloaderIterator(_loader())
    expected = [next(reference) for _ in range(10)]  # 3 batches an epoch: 3 restarts, each reshuffled
    assert len(sleeps.calls) == 3
    torch.manual_seed(0)
    ours = _InfiniteDataloaderIterator(_loader())
    ours.__class__ = _NoPauseInfiniteIterator
    assert [next(ours) for _ in range(10)] == expected
    assert len(sleeps.calls) == 3  # none more
    assert expected[0] + expected[1] + expected[2] != expected[3] + expected[4] + expected[5]  # set_epoch reshuffled


def test_keeps_the_pause_where_a_restart_spawns_workers(sleeps):
    ours = _InfiniteDataloaderIterator(_loader(num_workers=1))
    ours.__class__ = _NoPauseInfiniteIterator
    batches = [next(ours) for _ in range(4)]
    assert sorted(sum(batches[:3], [])) == list(range(10)) and sleeps.calls == [2]


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy'))
    summary = make_toy_voc(root, num_train=8, num_val=2, size=32, seed=5)
    return root, summary['classes']


def _train(root, classes, work_dir, loop):
    dataset = dict(type=ImageLevelDataset, data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
                   label_file='cls_labels.npy', metainfo=dict(classes=tuple(classes)),
                   pipeline=[dict(type=LoadImageFromFile), dict(type=PackCAMInputs)])
    model = dict(type=CAMClassifier,
                 backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=4, out_indices=(3, )),
                 head=dict(type=CAMHead, in_channels=32, num_classes=len(classes) - 1))
    runner = Runner(
        model=model, work_dir=str(work_dir), experiment_name=osp.basename(str(work_dir)),
        train_dataloader=dict(batch_size=3, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=True),
                              dataset=dataset),
        train_cfg=dict(type=loop, max_iters=7, val_interval=8),  # 3 batches an epoch: two restarts
        optim_wrapper=dict(optimizer=dict(type=torch.optim.SGD, lr=0.1)),
        default_hooks=dict(checkpoint=None, logger=None), default_scope=None, randomness=dict(seed=0))
    runner.train()
    return list(runner.message_hub.get_scalar('train/loss').data[0])


def test_runner_trains_identically_to_mmengine_loop_without_pausing(toy_root, tmp_path, sleeps):
    root, classes = toy_root
    expected = _train(root, classes, tmp_path / 'mmengine', IterBasedTrainLoop)
    assert len(sleeps.calls) == 2
    assert _train(root, classes, tmp_path / 'no_pause', NoPauseIterBasedTrainLoop) == expected
    assert len(sleeps.calls) == 2 and len(expected) == 7
