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


def _rank_main(rank: int, port: int, bad_rank: int, results) -> None:
    """One of 2 gloo processes: only ``bad_rank`` sees a NaN loss; every rank must raise in that iteration."""
    import torch.distributed as torch_dist
    from types import SimpleNamespace

    from csd_mm.engine.hooks.finite_loss_hook import ranks_with_non_finite_loss
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    try:
        hook = FiniteLossHook()
        runner = SimpleNamespace(iter=6, epoch=0)  # the two fields the hook reports
        hook.after_train_iter(runner, 6, outputs=dict(loss=torch.tensor(0.5)))  # every rank finite: no stop
        seen = ranks_with_non_finite_loss(rank == bad_rank)
        loss = float('nan') if rank == bad_rank else 0.5
        try:
            hook.after_train_iter(runner, 6, outputs=dict(loss=torch.tensor(loss)))
            message = None
        except FloatingPointError as e:
            message = str(e)
        results[rank] = (seen, message)
    finally:
        torch_dist.destroy_process_group()


@pytest.mark.slow
def test_every_rank_stops_in_the_iteration_one_rank_sees_a_non_finite_loss():
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    # fork: the test module is not importable by name in a spawned child
    mp.start_processes(_rank_main, args=(port, 1, results), nprocs=2, join=True, start_method='fork')
    assert results[0][0] == results[1][0] == [1]
    assert 'non-finite loss loss=nan (non-finite on rank(s) [1])' in results[1][1]
    assert 'the loss of rank(s) [1] is not finite' in results[0][1]
    assert 'iteration 7 (epoch 1, batch 7)' in results[0][1]
