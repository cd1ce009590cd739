"""Tests of csd_mm/engine/runner/iter_based_train_loop.py: same batches as mmengine's loop, without its pause."""
import os.path as osp

import mmengine.runner.loops as mmengine_loops
import pytest
import torch
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.runner import IterBasedTrainLoop, Runner
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import DataLoader

from csd_mm.engine.runner import NoPauseIterBasedTrainLoop, restarts_worker_processes
from csd_mm.engine.runner.iter_based_train_loop import _NoPauseInfiniteIterator


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


def _train(parts, root, classes, work_dir, loop):
    model, dataset = parts(root, classes)
    runner = Runner(
        model=model, work_dir=str(work_dir), experiment_name=osp.basename(str(work_dir)),
        train_dataloader=dict(batch_size=3, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=True),
                              dataset=dataset),
        train_cfg=dict(type=loop, max_iters=7, val_interval=8),  # 3 batches an epoch: two restarts
        optim_wrapper=dict(optimizer=dict(type=torch.optim.SGD, lr=0.1)),
        default_hooks=dict(checkpoint=None, logger=None), default_scope=None, randomness=dict(seed=0))
    runner.train()
    return list(runner.message_hub.get_scalar('train/loss').data[0])


def test_runner_trains_identically_to_mmengine_loop_without_pausing(tiny_toy_voc, tiny_cam_parts, tmp_path, sleeps):
    root, classes = tiny_toy_voc
    expected = _train(tiny_cam_parts, root, classes, tmp_path / 'mmengine', IterBasedTrainLoop)
    assert len(sleeps.calls) == 2
    assert _train(tiny_cam_parts, root, classes, tmp_path / 'no_pause', NoPauseIterBasedTrainLoop) == expected
    assert len(sleeps.calls) == 2 and len(expected) == 7
