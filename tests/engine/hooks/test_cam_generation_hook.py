"""Tests of csd_mm/engine/hooks/cam_generation_hook.py with a real mmengine Runner on a tiny toy dataset."""
import os
import os.path as osp
import re
import shutil

import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.dataset import DefaultSampler
from mmengine.dist import get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import Runner
from mmpretrain.models import ResNet

from csd_mm.datasets import ImageLevelDataset, load_cls_labels, make_toy_voc, read_split
from csd_mm.datasets.source_bank import build_source_bank, load_source_bank
from csd_mm.datasets.transforms import PackCAMInputs
from csd_mm.engine.hooks import CAMGenerationHook
from csd_mm.models.classifiers import CAMClassifier
from csd_mm.models.heads import CAMHead
from csd_mm.utils.cam_io import cam_path, load_cam, read_cam_record, save_cam
from csd_mm.utils.checkpoint import weights_fingerprint
from csd_mm.utils.fileio import StaleOutputError, read_png

NUM_TRAIN = 12


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy'))
    summary = make_toy_voc(root, num_train=NUM_TRAIN, num_val=2, seed=3)
    return root, summary


def _dataset_cfg(root, classes, pipeline):
    return dict(type=ImageLevelDataset, data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
                data_prefix=dict(img_path='JPEGImages'), label_source='npy', label_file='cls_labels.npy',
                metainfo=dict(classes=tuple(classes)), pipeline=pipeline)


def _runner(root, classes, work_dir, source_bank):
    num_classes = len(classes) - 1
    pipeline = [dict(type=LoadImageFromFile), dict(type=PackCAMInputs)]
    cam_loader = dict(batch_size=2, num_workers=0, dataset=_dataset_cfg(root, classes, pipeline))
    torch.manual_seed(0)
    model = dict(
        type=CAMClassifier,
        backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=4, strides=(1, 2, 2, 1),
                      out_indices=(3, ), norm_eval=True),
        head=dict(type=CAMHead, in_channels=32, num_classes=num_classes),
        test_cfg=dict(scales=(1.0, ), flip=False))
    return Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=osp.basename(str(work_dir)),  # one logger per test, even within one second
        train_dataloader=dict(batch_size=4, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=True),
                              dataset=_dataset_cfg(root, classes, pipeline)),
        train_cfg=dict(by_epoch=False, max_iters=1, val_interval=100),
        optim_wrapper=dict(optimizer=dict(type=torch.optim.SGD, lr=0.01)),
        custom_hooks=[dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_loader,
                           source_bank=source_bank)],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope=None,
        randomness=dict(seed=0))


def _hook(runner):
    return next(h for h in runner.hooks if isinstance(h, CAMGenerationHook))


def test_after_train_writes_cams_skips_existing_and_builds_the_bank(toy_root, tmp_path):
    root, summary = toy_root
    classes = summary['classes']
    runner = _runner(root, classes, tmp_path, dict(out_dir='bank', tau_fg=0.30, tau_bg=0.05))
    runner.train()
    hook = _hook(runner)
    cam_dir = osp.join(str(tmp_path), 'cams')
    dataset = hook._build_dataset(hook.dataloader_cfg)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert len(infos) == NUM_TRAIN
    all_peaks = []
    assert sorted(f for f in os.listdir(cam_dir) if f.endswith('.npz')) == \
        sorted(d['img_id'] + '.npz' for d in infos)
    for d in infos:
        cam, keys = load_cam(cam_path(cam_dir, d['img_id']))
        np.testing.assert_array_equal(keys, np.flatnonzero(d['gt_label']))  # the image's own classes
        assert cam.shape == (len(keys), 64, 64)
        # max-normalised: relu(c) / (max + 1e-5), so a peak is m / (m + 1e-5) <= 1 (0 without positive score;
        # below 1 - 1e-3 only when the raw maximum m is tiny, which a barely trained network can give)
        peaks = cam.reshape(len(keys), -1).max(1)
        assert cam.min() >= 0 and np.all(peaks <= 1.0 + 1e-3)
        all_peaks.extend(peaks.tolist())
    assert max(all_peaks) == pytest.approx(1.0, abs=1e-3)

    # the source bank: one entry per single-label image, masks = thresholded CAMs
    single = [d for d in infos if d['gt_label'].sum() == 1]
    assert single and len(single) < NUM_TRAIN
    index = load_source_bank(osp.join(str(tmp_path), 'bank'))
    fingerprint = weights_fingerprint(runner.model)  # the trained weights: the CAM folder and the bank name them
    assert read_cam_record(cam_dir) == dict(fingerprint=fingerprint, checkpoint=None, iteration=1)
    assert index['settings'] == dict(prior='cam', tau_fg=0.30, tau_bg=0.05, cam_fingerprint=fingerprint)
    assert [e['img_id'] for e in index['entries']] == [d['img_id'] for d in single]
    for e, d in zip(index['entries'], single):
        assert e['class'] == int(np.flatnonzero(d['gt_label'])[0])
        cam, _ = load_cam(cam_path(cam_dir, d['img_id']))
        expected = np.full(cam.shape[1:], 255, np.uint8)
        expected[cam[0] < 0.05] = 0
        expected[cam[0] >= 0.30] = 1
        np.testing.assert_array_equal(read_png(osp.join(str(tmp_path), 'bank', e['mask'])), expected)

    # a second pass computes nothing; deleting one file recomputes exactly that one
    loader_cfg = dict(hook.dataloader_cfg, dataset=dataset)
    assert hook.generate(runner, loader_cfg) == 0
    victim = cam_path(cam_dir, infos[5]['img_id'])
    before = {f: os.stat(osp.join(cam_dir, f)).st_mtime_ns for f in os.listdir(cam_dir)}
    os.remove(victim)
    assert hook.generate(runner, loader_cfg) == 1
    assert osp.isfile(victim)
    after = {f: os.stat(osp.join(cam_dir, f)).st_mtime_ns for f in os.listdir(cam_dir)}
    changed = [f for f in after if after[f] != before.get(f)]
    assert changed == [osp.basename(victim)]


def test_source_bank_from_pseudo_masks(toy_root, tmp_path):
    root, summary = toy_root
    classes = summary['classes']
    mask_dir = osp.join(root, 'SegmentationClassAug')
    runner = _runner(root, classes, tmp_path, dict(out_dir='bank_pm', pseudo_mask_dir=mask_dir))
    hook = _hook(runner)
    dataset = hook._build_dataset(hook.dataloader_cfg)
    # no CAM exists in this work_dir: the bank must come from the pseudo masks alone
    hook.write_source_bank(runner, dataset)
    assert not osp.exists(osp.join(str(tmp_path), 'cams'))
    index = load_source_bank(osp.join(str(tmp_path), 'bank_pm'))
    assert index['settings'] == dict(prior='masks', mask_dir=mask_dir)
    assert index['entries']
    for e in index['entries']:
        gt = read_png(osp.join(mask_dir, e['img_id'] + '.png'))
        expected = np.full(gt.shape, 255, np.uint8)
        expected[gt == 0] = 0
        expected[gt == e['class'] + 1] = 1
        assert (expected == 1).any()
        np.testing.assert_array_equal(read_png(osp.join(str(tmp_path), 'bank_pm', e['mask'])), expected)


def test_a_bank_with_other_settings_is_refused_before_training(toy_root, tmp_path):
    root, summary = toy_root
    classes = summary['classes']
    mask_dir = osp.join(root, 'SegmentationClassAug')
    # a finished bank in the run's out_dir, made from pseudo masks
    ids = read_split(osp.join(root, 'ImageSets/Segmentation/train_aug.txt'))
    labels = load_cls_labels(osp.join(root, 'cls_labels.npy'))
    build_source_bank(osp.join(str(tmp_path), 'bank'), ids, np.stack([labels[i] for i in ids]),
                      pseudo_mask_dir=mask_dir, progress=False)
    index_file = osp.join(str(tmp_path), 'bank', 'index.json')
    before = os.stat(index_file).st_mtime_ns
    # a CAM prior asked of it: refused before any training iteration
    runner = _runner(root, classes, tmp_path, dict(out_dir='bank', tau_fg=0.30, tau_bg=0.05))
    with pytest.raises(ValueError, match=f'source bank {osp.join(str(tmp_path), "bank")} exists with other '
                       f'settings: built with pseudo-mask prior from {mask_dir}, asked for CAM prior, '
                       r'tau_fg=0\.3, tau_bg=0\.05\. Delete'):
        runner.train()
    assert runner.iter == 0 and not osp.exists(osp.join(str(tmp_path), 'cams'))
    assert os.stat(index_file).st_mtime_ns == before


@pytest.mark.parametrize('out_dir,source_bank,message', [
    ('../../escaped', None, r"CAMGenerationHook out_dir='\.\./\.\./escaped' leaves the work dir"),
    ('/tmp/csd_mm_escaped_cams', None, r"CAMGenerationHook out_dir='/tmp/csd_mm_escaped_cams' is an absolute path"),
    ('cams', dict(out_dir='../bank'), r"CAMGenerationHook source_bank\.out_dir='\.\./bank' leaves the work dir"),
])
def test_config_values_cannot_write_outside_the_work_dir(toy_root, tmp_path, out_dir, source_bank, message):
    root, summary = toy_root
    work = tmp_path / 'a' / 'b' / 'work'
    runner = _runner(root, summary['classes'], work, source_bank)
    _hook(runner).out_dir = out_dir
    with pytest.raises(ValueError, match=message):
        runner.train()
    assert runner.iter == 0  # refused before training
    assert not (tmp_path / 'a' / 'escaped').exists() and not osp.exists('/tmp/csd_mm_escaped_cams')
    assert not (tmp_path / 'a' / 'b' / 'bank').exists()


def test_an_out_dir_named_on_the_command_line_may_lie_anywhere(toy_root, tmp_path):
    """tools/test.py --cam-dir: the user named the folder, so the hook writes there."""
    root, summary = toy_root
    runner = _runner(root, summary['classes'], tmp_path / 'work', None)
    hook = _hook(runner)
    hook.out_dir, hook.out_dir_from_cli = str(tmp_path / 'elsewhere'), True
    hook.before_run(runner)
    assert hook._resolve_out_dir(runner) == str(tmp_path / 'elsewhere')


def _cam_runner(parts, root, classes, work_dir, name, seed, load_from=None):
    """A 2-iteration CAM training whose hook writes ``cams/`` and ``bank/``; ``load_from`` resumes it."""
    model, dataset = parts(root, classes)
    return Runner(
        model=model, work_dir=str(work_dir), experiment_name=f'{osp.basename(str(work_dir))}_{name}',
        train_dataloader=dict(batch_size=4, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=True),
                              dataset=dataset),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(optimizer=dict(type=torch.optim.SGD, lr=0.1)),
        custom_hooks=[dict(type=CAMGenerationHook, dataloader=dict(batch_size=4, dataset=dataset),
                           source_bank=dict(out_dir='bank'))],
        default_hooks=dict(checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=2), logger=None),
        default_scope=None, randomness=dict(seed=seed), load_from=load_from, resume=load_from is not None)


def _mtimes(folder):
    return {f: os.stat(osp.join(folder, f)).st_mtime_ns for f in os.listdir(folder)}


def test_cams_of_other_weights_are_refused_and_a_resumed_run_completes_its_own(tiny_toy_voc, tiny_cam_parts,
                                                                               tmp_path):
    root, classes = tiny_toy_voc
    work = tmp_path / 'work'
    cam_dir, bank_index = str(work / 'cams'), str(work / 'bank' / 'index.json')
    first = _cam_runner(tiny_cam_parts, root, classes, work, 'first', seed=0)
    first.train()
    fingerprint = weights_fingerprint(first.model)
    assert read_cam_record(cam_dir) == dict(fingerprint=fingerprint, checkpoint=None, iteration=2)
    assert load_source_bank(str(work / 'bank'))['settings']['cam_fingerprint'] == fingerprint

    # a pass killed after some files: the resumed training (at its last iteration, weights from iter_2.pth)
    # has the recorded weights and writes the missing files only
    names = sorted(f for f in os.listdir(cam_dir) if f.endswith('.npz'))
    for name in names[:3]:
        os.remove(osp.join(cam_dir, name))
    before = _mtimes(cam_dir)
    resumed = _cam_runner(tiny_cam_parts, root, classes, work, 'resumed', seed=0,
                          load_from=str(work / 'iter_2.pth'))
    resumed.train()
    assert weights_fingerprint(resumed.model) == fingerprint
    after = _mtimes(cam_dir)
    assert sorted(f for f in after if after[f] != before.get(f)) == names[:3]
    assert read_cam_record(cam_dir)['fingerprint'] == fingerprint
    # (the record of a folder first written by the resumed run names the checkpoint of the weights)
    assert _hook(resumed)._checkpoint(resumed) == str(work / 'iter_2.pth')

    # a training from scratch with another seed in the same work dir: refused before its first step, since its
    # steps make other weights, whose CAM pass would refuse the folder and the bank after training
    before, bank_before = _mtimes(cam_dir), os.stat(bank_index).st_mtime_ns
    other = _cam_runner(tiny_cam_parts, root, classes, work, 'other', seed=1)
    with pytest.raises(StaleOutputError) as refused:
        other.train()
    assert other.iter == 0
    bank_dir = str(work / 'bank')
    assert str(refused.value) == (
        f'{cam_dir} holds the CAMs of weights {fingerprint}; {bank_dir} holds a source bank built from the CAMs '
        f'of weights {fingerprint}. This training runs iterations 0 to 2, so it will end with other weights, '
        f'whose CAM pass would refuse them after training. Delete {cam_dir} and {bank_dir} (or set other '
        'out_dirs of the CAMGenerationHook) before training.')
    assert _mtimes(cam_dir) == before and os.stat(bank_index).st_mtime_ns == bank_before
    # the CAM pass itself refuses other weights too (here the untrained ones of that run), as does tools/test.py's
    # path (the test loop's CAMs), which takes the folder for the recorded weights
    other_fingerprint = weights_fingerprint(other.model)
    assert other_fingerprint != fingerprint
    with pytest.raises(StaleOutputError) as refused:
        _hook(other).generate(other, _hook(other).dataloader_cfg)
    assert str(refused.value).startswith(
        f'CAM folder {cam_dir} holds the CAMs of other weights: written by weights {fingerprint} (iteration 2), '
        f"while this model's weights are {other_fingerprint}.")
    assert f'Delete {cam_dir}, or write to another folder' in str(refused.value)
    assert _mtimes(cam_dir) == before
    with pytest.raises(StaleOutputError, match='holds the CAMs of other weights'):
        _hook(other).before_test(other)
    _hook(resumed).before_test(resumed)
    assert _hook(resumed)._test_writer.close() == 0

    # the CAM folder deleted, the bank of the first weights is still refused before training
    shutil.rmtree(cam_dir)
    again = _cam_runner(tiny_cam_parts, root, classes, work, 'again', seed=1)
    with pytest.raises(StaleOutputError) as refused:
        again.train()
    assert again.iter == 0 and not osp.exists(cam_dir)
    assert str(refused.value).startswith(
        f'{bank_dir} holds a source bank built from the CAMs of weights {fingerprint}. This training runs')
    assert str(refused.value).endswith(f'Delete {bank_dir} (or set other out_dirs of the CAMGenerationHook) '
                                       'before training.')
    assert os.stat(bank_index).st_mtime_ns == bank_before
    # the bank of the first weights, once complete, is refused by a CAM pass of other weights (after training)
    with pytest.raises(StaleOutputError) as refused:
        _hook(again).after_train(again)
    assert str(refused.value).startswith(
        f'source bank {bank_dir} exists with other settings: built with CAM prior, tau_fg=0.3, tau_bg=0.05, '
        f'CAMs of weights {fingerprint}, asked for CAM prior, tau_fg=0.3, tau_bg=0.05, CAMs of weights '
        f'{weights_fingerprint(again.model)}. Delete')
    assert read_cam_record(cam_dir)['fingerprint'] == weights_fingerprint(again.model) == other_fingerprint
    assert os.stat(bank_index).st_mtime_ns == bank_before
    # both deleted: the training runs and writes its own
    shutil.rmtree(cam_dir)
    shutil.rmtree(bank_dir)
    third = _cam_runner(tiny_cam_parts, root, classes, work, 'third', seed=1)
    third.train()
    assert third.iter == 2
    assert read_cam_record(cam_dir)['fingerprint'] == weights_fingerprint(third.model) != fingerprint
    assert load_source_bank(bank_dir)['settings']['cam_fingerprint'] == weights_fingerprint(third.model)


def _record_rank_main(rank: int, port: int, cam_dir: str, results) -> None:
    """One of 2 gloo ranks running the test loop's CAM folder check (``before_test``) on the same weights."""
    from types import SimpleNamespace

    import torch.distributed as torch_dist
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    try:
        torch.manual_seed(0)  # the same weights on both ranks, as under DDP
        # the three things before_test reads of a runner: its work dir, model and checkpoint
        runner = SimpleNamespace(work_dir=cam_dir, model=torch.nn.Linear(2, 2), _load_from='w/iter_4.pth')
        hook = CAMGenerationHook(out_dir=cam_dir, out_dir_from_cli=True)
        outcome = []
        for _ in range(2):  # a new folder, then the same weights again
            hook.before_test(runner)
            hook._test_writer.close()
            outcome.append(read_cam_record(cam_dir))
        if rank == 0:
            save_cam(cam_path(cam_dir, 'a'), np.zeros((1, 2, 2)), [0])
        torch_dist.barrier()
        with torch.no_grad():
            runner.model.weight.add_(1.0)  # other weights, on both ranks
        try:
            hook.before_test(runner)
            outcome.append(None)
        except ValueError as e:
            outcome.append(str(e))
        # after a DDP training each rank holds the batch-norm statistics of its own last batch
        norm = torch.nn.BatchNorm1d(2)
        norm.running_mean.fill_(rank + 1.0)
        CAMGenerationHook._use_buffers_of_rank_0(norm)
        results[rank] = (outcome, weights_fingerprint(runner.model), norm.running_mean.tolist())
    finally:
        torch_dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_take_rank_0s_buffers_read_its_record_and_both_refuse_other_weights(tmp_path):
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    cam_dir = str(tmp_path / 'cams')
    # fork: the test module is not importable by name in a spawned child
    mp.start_processes(_record_rank_main, args=(port, cam_dir, results), nprocs=2, join=True, start_method='fork')
    torch.manual_seed(0)
    fingerprint = weights_fingerprint(torch.nn.Linear(2, 2))
    for rank in (0, 1):
        (first, second, refused), other, running_mean = results[rank]
        assert running_mean == [1.0, 1.0]  # rank 0's
        assert first == second == dict(fingerprint=fingerprint, checkpoint='w/iter_4.pth', iteration=None)
        assert refused.startswith(f'CAM folder {cam_dir} holds the CAMs of other weights: written by weights '
                                  f"{fingerprint} (checkpoint w/iter_4.pth), while this model's weights are {other}.")


def _test_outputs(ids, value):
    """The test loop's outputs for ``ids``: data samples with a CAM of one class, all ``value``."""
    from mmengine.structures import BaseDataElement
    return [BaseDataElement(metainfo=dict(img_id=i), cam=torch.full((1, 2, 2), value), cam_keys=torch.tensor([0]))
            for i in ids]


def test_a_test_run_records_a_folder_without_record_only_once_it_rewrote_every_file(tmp_path):
    """A CAM folder written before CAM folders recorded their weights: the test loop rewrites its files, and only
    a test epoch that ends with every writer closed and every file of the folder rewritten records its weights.
    A run that dies midway (no epoch end), or whose last writes fail, leaves the folder without a record."""
    from types import SimpleNamespace

    from mmengine.logging import MMLogger
    cam_dir = str(tmp_path / 'cams')
    for img_id in 'abc':
        save_cam(cam_path(cam_dir, img_id), np.zeros((1, 2, 2)), [0])
    torch.manual_seed(0)
    # what the hook reads of a runner in the test loop: its work dir, model, checkpoint and logger
    runner = SimpleNamespace(work_dir=str(tmp_path), model=torch.nn.Linear(2, 2), _load_from='w/iter_4.pth',
                             logger=MMLogger.get_current_instance())
    hook = CAMGenerationHook(out_dir=cam_dir, out_dir_from_cli=True)

    def rewritten():
        return [i for i in 'abc' if osp.isfile(cam_path(cam_dir, i)) and load_cam(cam_path(cam_dir, i))[0].max() > 0]

    # dies midway: two batches written, then no epoch end
    hook.before_test(runner)
    hook.after_test_iter(runner, 0, outputs=_test_outputs('ab', 0.5))
    hook._test_writer.close()
    assert rewritten() == ['a', 'b'] and read_cam_record(cam_dir) is None
    # every batch computed, but the last file cannot be written (a folder holds its name): the epoch end raises
    os.remove(cam_path(cam_dir, 'c'))
    os.mkdir(cam_path(cam_dir, 'c'))
    hook.before_test(runner)
    hook.after_test_iter(runner, 0, outputs=_test_outputs('ab', 0.5))
    hook.after_test_iter(runner, 1, outputs=_test_outputs('c', 0.5))
    with pytest.raises(OSError):
        hook.after_test_epoch(runner)
    assert read_cam_record(cam_dir) is None
    # a finished run that rewrote every file records the weights that wrote them
    os.rmdir(cam_path(cam_dir, 'c'))
    save_cam(cam_path(cam_dir, 'c'), np.zeros((1, 2, 2)), [0])
    hook.before_test(runner)
    hook.after_test_iter(runner, 0, outputs=_test_outputs('ab', 0.5))
    hook.after_test_iter(runner, 1, outputs=_test_outputs('c', 0.5))
    hook.after_test_epoch(runner)
    assert rewritten() == ['a', 'b', 'c']
    assert read_cam_record(cam_dir) == dict(fingerprint=weights_fingerprint(runner.model), checkpoint='w/iter_4.pth',
                                            iteration=None)


def test_up_front_refusal_needs_cam_files_and_a_cam_prior_bank(tmp_path):
    """A record alone (the CAM files deleted, or a pass that crashed before its first file) is rewritten by the
    next writer, so it is no reason to refuse; a bank built from recorded CAMs is, whatever spells the CAM prior."""
    from types import SimpleNamespace

    from csd_mm.datasets.source_bank import INDEX_FILE
    from csd_mm.utils.cam_io import record_new_cam_folder
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=0, max_iters=10)
    cam_dir, bank_dir = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    record_new_cam_folder(cam_dir, 'aaaa000000000001')
    hook = CAMGenerationHook(dataloader=dict())
    hook.refuse_outputs_of_recorded_weights(runner)  # only .cams_of.json: nothing refused
    save_cam(cam_path(cam_dir, 'a'), np.zeros((1, 2, 2)), [0])
    with pytest.raises(StaleOutputError, match=f'^{cam_dir} holds the CAMs of weights aaaa000000000001\\. '):
        hook.refuse_outputs_of_recorded_weights(runner)
    shutil.rmtree(cam_dir)
    os.makedirs(bank_dir)
    with open(osp.join(bank_dir, INDEX_FILE), 'w') as f:
        f.write('{"entries": [], "settings": {"prior": "cam", "cam_fingerprint": "aaaa000000000001"}}')
    for source_bank in (dict(out_dir='bank'), dict(out_dir='bank', pseudo_mask_dir=None)):
        with pytest.raises(StaleOutputError, match=f'^{bank_dir} holds a source bank built from the CAMs of '):
            CAMGenerationHook(dataloader=dict(), source_bank=source_bank).refuse_outputs_of_recorded_weights(runner)
    # a bank from pseudo masks depends on no weights; a malformed index is left to the bank's own checks
    CAMGenerationHook(dataloader=dict(), source_bank=dict(out_dir='bank', pseudo_mask_dir='pm')
                      ).refuse_outputs_of_recorded_weights(runner)
    with open(osp.join(bank_dir, INDEX_FILE), 'w') as f:
        f.write('[]')
    CAMGenerationHook(dataloader=dict(), source_bank=dict(out_dir='bank')).refuse_outputs_of_recorded_weights(runner)


def test_steps_to_run_follow_the_loop_kind():
    """An epoch-based training resumed after its last epoch runs no step even when a loader that grew (fewer
    GPUs) makes iter < max_iters; an iteration-based one counts iterations."""
    from types import SimpleNamespace

    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
    epoch_loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)
    finished = SimpleNamespace(train_loop=epoch_loop, epoch=5, max_epochs=5, iter=660, max_iters=5280)
    assert not CAMGenerationHook._steps_to_run(finished)
    assert CAMGenerationHook._steps_to_run(SimpleNamespace(train_loop=epoch_loop, epoch=4, max_epochs=5, iter=0,
                                                           max_iters=0))
    iter_loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    assert CAMGenerationHook._steps_to_run(SimpleNamespace(train_loop=iter_loop, epoch=0, max_epochs=1, iter=299,
                                                           max_iters=300))
    assert not CAMGenerationHook._steps_to_run(SimpleNamespace(train_loop=iter_loop, epoch=0, max_epochs=1,
                                                               iter=300, max_iters=300))


# ---- a CAM file that cannot be written: the error surfaces on its rank, the other ranks do not wait for it

class _DirectoryInPlaceOfCAM(Hook):
    """Puts a directory where the CAM file of ``img_id`` goes, on ``rank``, once the test loop has run its first
    batch there: that image's write then fails mid-run (``os.replace`` cannot put a file over a directory)."""

    priority = 'HIGHEST'

    def __init__(self, cam_dir: str, img_id: str, rank: int = 0) -> None:
        self.path, self.rank = cam_path(cam_dir, img_id), rank

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if batch_idx == 0 and get_dist_info()[0] == self.rank:
            os.makedirs(self.path)


def _write_error_runner(parts, root, classes, work_dir, name, hooks=(), distributed=False, skip_existing=True):
    """A 1-iteration CAM training whose CAMGenerationHook writes ``<work_dir>/cams`` after training
    (``skip_existing`` as given) and in the test loop (SeedMetric on the 8 train_aug images, batch size 1)."""
    from mmseg.datasets.transforms import LoadAnnotations

    from csd_mm.evaluation.metrics import SeedMetric
    model, dataset = parts(root, classes)
    test_dataset = dict(dataset, data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
                        pipeline=[dict(type=LoadImageFromFile), dict(type=LoadAnnotations),
                                  dict(type=PackCAMInputs)])
    dist_cfg = dict(launcher='pytorch', cfg=dict(model_wrapper_cfg=dict(type='CPUDistributedDataParallel'))) \
        if distributed else {}
    return Runner(
        model=model, work_dir=str(work_dir), experiment_name=f'{osp.basename(str(work_dir))}_{name}',
        train_dataloader=dict(batch_size=4, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=True),
                              dataset=dataset),
        train_cfg=dict(by_epoch=False, max_iters=1),
        optim_wrapper=dict(optimizer=dict(type=torch.optim.SGD, lr=0.1)),
        test_dataloader=dict(batch_size=1, num_workers=0,
                             sampler=dict(type=DefaultSampler, shuffle=False, round_up=False), dataset=test_dataset),
        test_evaluator=dict(type=SeedMetric), test_cfg=dict(),
        custom_hooks=[*hooks, dict(type=CAMGenerationHook, dataloader=dict(batch_size=1, dataset=dataset),
                                   skip_existing=skip_existing)],
        default_hooks=dict(checkpoint=None), default_scope=None, randomness=dict(seed=0), **dist_cfg)


def test_a_cam_write_failing_mid_run_raises_naming_the_file(tiny_toy_voc, tiny_cam_parts, tmp_path):
    """One process: the test loop's failed write is raised by the run, naming the file; so is one of the CAM pass
    after training (there a folder holds the name from the start: skip_existing=False writes it anyway)."""
    root, classes = tiny_toy_voc
    ids = read_split(osp.join(root, 'ImageSets/Segmentation/train_aug.txt'))
    cam_dir = str(tmp_path / 'work/cams')
    runner = _write_error_runner(tiny_cam_parts, root, classes, tmp_path / 'work', 'test',
                                 hooks=[_DirectoryInPlaceOfCAM(cam_dir, ids[2])])
    with pytest.raises(IsADirectoryError, match=re.escape(cam_path(cam_dir, ids[2]))):
        runner.test()
    assert all(osp.isfile(cam_path(cam_dir, i)) for i in ids[:2])  # the images before it were written
    shutil.rmtree(cam_dir)
    os.makedirs(cam_path(cam_dir, ids[5]))
    runner = _write_error_runner(tiny_cam_parts, root, classes, tmp_path / 'work', 'train', skip_existing=False)
    with pytest.raises(IsADirectoryError, match=re.escape(cam_path(cam_dir, ids[5]))):
        runner.train()
    assert all(osp.isfile(cam_path(cam_dir, i)) for i in ids[:5])


def _write_error_rank_main(rank: int, port: int, parts, root: str, classes, work_dir: str, bad_id: str) -> None:
    """One of 2 gloo ranks (as torchrun starts them; the Runner wraps the model in DDP): tools/test.py's test
    loop, where rank 1's write of ``bad_id`` fails after its first batch, then a 1-iteration training whose CAM
    pass cannot write ``bad_id`` either. Writes each run's outcome to ``<work_dir>/rank<r>.txt``."""
    from datetime import timedelta

    import torch.distributed as torch_dist
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2')
    # a short timeout: were a rank left waiting, the run would end with gloo's timeout error, not hang the suite
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2,
                                  timeout=timedelta(seconds=60))
    outcomes = []
    cam_dir = osp.join(work_dir, 'cams')
    try:
        for name in ('test', 'train'):
            hooks = [_DirectoryInPlaceOfCAM(cam_dir, bad_id, rank=1)] if name == 'test' else []
            if name == 'train' and rank == 0:
                shutil.rmtree(cam_dir)
                os.makedirs(cam_path(cam_dir, bad_id))
            torch_dist.barrier()
            runner = _write_error_runner(parts, root, classes, work_dir, name, hooks, distributed=True,
                                         skip_existing=False)
            try:
                runner.test() if name == 'test' else runner.train()
                outcomes.append(f'{name}: finished')
            except Exception as e:
                outcomes.append(f'{name}: {type(e).__name__}: {e}')
    finally:
        with open(osp.join(work_dir, f'rank{rank}.txt'), 'w') as f:
            f.write('\n'.join(outcomes))
        torch_dist.destroy_process_group()


def test_a_cam_write_failing_on_rank_1_ends_both_ranks_with_errors(tiny_toy_voc, tiny_cam_parts, tmp_path,
                                                                   run_two_gloo_ranks):
    """2 gloo ranks, writes fail on rank 1 only: in the test loop (rank 1 goes on through its batches, which the
    metric gathers) and in the CAM pass after training. Both ranks end, rank 1 with its error naming the file,
    rank 0 with a RuntimeError naming rank 1 and the folder (it used to wait for rank 1 in a collective)."""
    root, classes = tiny_toy_voc
    ids = read_split(osp.join(root, 'ImageSets/Segmentation/train_aug.txt'))
    work_dir = str(tmp_path / 'work')
    os.makedirs(work_dir)
    # the non-shuffling samplers give rank 1 the odd images: it fails on its second, and has two more to go
    bad_id = ids[3]
    hung = run_two_gloo_ranks(_write_error_rank_main, tiny_cam_parts, root, classes, work_dir, bad_id)
    assert not hung, f'rank(s) {hung} still running after 120 s'
    cam_dir = osp.join(work_dir, 'cams')
    outcomes = [open(osp.join(work_dir, f'rank{rank}.txt')).read().splitlines() for rank in (0, 1)]
    failed_on_1 = f'RuntimeError: writing the CAM files to {cam_dir} failed on rank(s) [1] (see their log)'
    assert outcomes[0] == [f'test: {failed_on_1}', f'train: {failed_on_1}']
    assert len(outcomes[1]) == 2
    for line, name in zip(outcomes[1], ('test', 'train')):
        assert line.startswith(f'{name}: IsADirectoryError: ') and cam_path(cam_dir, bad_id) in line, line
    # the CAM pass: rank 0 wrote all of its images (the even ones), rank 1 the one before the failed one
    assert all(osp.isfile(cam_path(cam_dir, i)) for i in ids[0::2] + [ids[1]])
