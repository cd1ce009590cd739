"""End to end: the stock tools on a tiny generated toy dataset, real Runner, real files.

tools/train.py (baseline) -> CAM hook writes CAMs + source bank -> tools/test.py writes CAMs and reports the
seed sweep -> resume from a checkpoint (weights_only loading) -> CSD training on the bank -> 2-process
(gloo) training with tools/dist_train.sh, each CAM written exactly once.
"""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BASE_CFG = REPO / 'configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py'
CSD_CFG = REPO / 'configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py'
TINY = ['train_dataloader.batch_size=4', 'train_cfg.max_iters=4', 'default_hooks.checkpoint.interval=2',
        'param_scheduler.0.end=4', 'default_hooks.logger.interval=1']


@pytest.fixture(scope='module')
def workspace(tmp_path_factory, run_tool):
    """A working folder holding data/toy_voc (the path the toy configs read), generated small."""
    root = tmp_path_factory.mktemp('e2e')
    run_tool([REPO / 'tools/dataset_converters/make_toy_voc.py', root / 'data/toy_voc', '--num-train', 24,
             '--num-val', 4, '--seed', 3], cwd=root)
    return root


def _ids(root, split):
    return (root / f'data/toy_voc/ImageSets/Segmentation/{split}.txt').read_text().split()


@pytest.fixture(scope='module')
def baseline(workspace, run_tool):
    work = workspace / 'work_dirs/base'
    log = run_tool([REPO / 'tools/train.py', BASE_CFG, '--work-dir', work, '--cfg-options', *TINY], cwd=workspace)
    return work, log


def test_train_writes_checkpoints_cams_and_source_bank(workspace, baseline):
    work, log = baseline
    assert (work / 'iter_4.pth').is_file()
    assert re.search(r'Iter\(train\) \[4/4\].*loss_cls: [0-9.]+', log)
    from csd_mm.utils.cam_io import load_cam
    labels = np.load(workspace / 'data/toy_voc/cls_labels.npy', allow_pickle=True).item()
    for img_id in _ids(workspace, 'train_aug'):
        cam, keys = load_cam(str(work / 'cams' / f'{img_id}.npz'))
        assert keys.tolist() == np.flatnonzero(labels[img_id]).tolist()
        assert cam.min() >= 0 and cam.max() <= 1 + 1e-3
    index = json.loads((work / 'source_bank/index.json').read_text())
    single = [i for i in _ids(workspace, 'train_aug') if labels[i].sum() == 1]
    assert sorted(e['img_id'] for e in index['entries']) == sorted(single)
    assert all((work / 'source_bank' / e['mask']).is_file() for e in index['entries'])


def test_test_tool_writes_cams_and_reports_seed_miou(workspace, baseline, run_tool):
    work, _ = baseline
    cam_dir = workspace / 'test_cams'
    log = run_tool([REPO / 'tools/test.py', BASE_CFG, work / 'iter_4.pth', '--work-dir', workspace / 'work_dirs/test',
                   '--cam-dir', cam_dir], cwd=workspace)
    out = log
    miou = float(re.search(r'seed/mIoU: ([0-9.]+)', out).group(1))
    assert 0.0 < miou <= 100.0
    ids = _ids(workspace, 'train')
    assert sorted(p.stem for p in cam_dir.glob('*.npz')) == sorted(ids)
    # the metric's number is the folder evaluation of the CAMs it wrote (float16 files: tiny differences)
    from csd_mm.evaluation.functional import evaluate_cam_folder
    summary = evaluate_cam_folder(str(cam_dir), str(workspace / 'data/toy_voc/SegmentationClassAug'), ids,
                                  num_classes=6, progress=False)
    assert abs(summary['best_miou'] * 100 - miou) < 0.5


def test_resume_continues_from_last_checkpoint(workspace, baseline, run_tool):
    work = workspace / 'work_dirs/resume'
    run_tool([REPO / 'tools/train.py', BASE_CFG, '--work-dir', work, '--cfg-options', *TINY[:-1],
             'train_cfg.max_iters=2', 'default_hooks.logger.interval=1', 'custom_hooks=[]'], cwd=workspace)
    assert (work / 'iter_2.pth').is_file()
    log = run_tool([REPO / 'tools/train.py', BASE_CFG, '--work-dir', work, '--resume', '--cfg-options', *TINY,
                   'custom_hooks=[]'], cwd=workspace)
    assert 'resumed epoch: 0, iter: 2' in log
    assert re.search(r'Iter\(train\) \[3/4\]', log) and not re.search(r'Iter\(train\) \[1/4\]', log)
    assert (work / 'iter_4.pth').is_file()


def test_csd_training_on_the_source_bank(workspace, baseline, run_tool):
    work, _ = baseline
    log = run_tool([REPO / 'tools/train.py', CSD_CFG, '--work-dir', workspace / 'work_dirs/csd', '--cfg-options',
                   *TINY, f'train_dataloader.dataset.source_bank={work / "source_bank"}', 'custom_hooks=[]'],
                   cwd=workspace)
    last = re.findall(r'Iter\(train\) \[4/4\].*', log)[-1]
    for key in ('loss_cls', 'loss_fg', 'loss_bg'):
        value = float(re.search(key + r': ([0-9.e+-]+)', last).group(1))
        assert np.isfinite(value) and value >= 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_cpu_processes(workspace, baseline):
    work = workspace / 'work_dirs/dist'
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', str(REPO / 'tools/dist_train.sh'), str(BASE_CFG), '2', '--work-dir', str(work),
                           '--cfg-options', *TINY, 'train_dataloader.batch_size=2'],
                          cwd=workspace, capture_output=True, text=True, env=env, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert 'Distributed training: True' in log
    assert (work / 'iter_4.pth').is_file()
    # each image computed by exactly one rank, all written
    done = [int(n) for n in re.findall(r'CAM generation: (\d+) of', log)]
    assert sum(done) == len(_ids(workspace, 'train_aug')) and len(done) == 1  # logged by rank 0 only
    assert sorted(p.stem for p in (work / 'cams').glob('*.npz')) == sorted(_ids(workspace, 'train_aug'))
