"""End to end: the stock tools on a tiny generated toy dataset, real Runner, real files.

tools/train.py (baseline) -> CAM hook writes CAMs + source bank -> tools/test.py writes CAMs, draws them
(--show-dir) and reports the seed sweep -> resume from a checkpoint (weights_only loading) -> CSD training on the
bank -> 2-process (gloo) training with tools/dist_train.sh and with tools/slurm_train.sh, each CAM written
exactly once; tools/slurm_test.sh.
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

pytestmark = pytest.mark.slow  # real trainings in subprocesses: about a minute and a half in all

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
    cam_dir, show_dir = workspace / 'test_cams', workspace / 'test_vis'
    log = run_tool([REPO / 'tools/test.py', BASE_CFG, work / 'iter_4.pth', '--work-dir', workspace / 'work_dirs/test',
                   '--cam-dir', cam_dir, '--show-dir', show_dir], cwd=workspace)
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
    # --show-dir: one row per image: the image, a heatmap per class of its label, the seeds at the best score
    threshold = float(re.search(r'seed/best_threshold: ([0-9.]+)', out).group(1))
    assert f'seeds at background score {threshold:.2f}' in out
    assert sorted(p.stem for p in show_dir.glob('*.png')) == sorted(ids)
    import mmcv
    from csd_mm.utils.cam_io import load_cam
    for img_id in ids:
        _, keys = load_cam(str(cam_dir / f'{img_id}.npz'))
        assert mmcv.imread(str(show_dir / f'{img_id}.png')).shape == (64, 64 * (len(keys) + 2), 3)


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


def _logged_losses(log: str, keys) -> list:
    """The per-iteration values of ``keys`` (and the total ``loss``) logged by a run with logger interval 1."""
    rows = []
    for line in re.findall(r'Iter\(train\) \[\d+/\d+\].*', log):
        rows.append({k: float(re.search(r'(?<![a-z_])' + k + r': ([0-9.e+-]+)', line).group(1))
                     for k in ('loss', ) + tuple(keys)})
    return rows


def test_csd_training_on_the_source_bank(workspace, run_tool):
    """Every logged iteration's optimised loss is L_cls + loss_fg + loss_bg, and the consistency terms are
    positive on the batches holding pairs (window 1, 8 digits: the values of each iteration, unrounded).

    The bank's prior is the toy ground truth (the hook's pseudo-mask prior): the 4-iteration baseline's CAMs are
    nearly zero everywhere, so its bank has (almost) no foreground and its pairs would paste nothing, leaving
    both consistency terms at 0. The stage-0 bank -> CSD hand-over is run by test_run_pipeline.py."""
    from csd_mm.datasets import build_source_bank
    ids = _ids(workspace, 'train_aug')
    labels = np.load(workspace / 'data/toy_voc/cls_labels.npy', allow_pickle=True).item()
    bank = workspace / 'gt_prior_bank'
    build_source_bank(str(bank), ids, np.stack([labels[i] for i in ids]),
                      pseudo_mask_dir=str(workspace / 'data/toy_voc/SegmentationClassAug'), progress=False)
    log = run_tool([REPO / 'tools/train.py', CSD_CFG, '--work-dir', workspace / 'work_dirs/csd', '--cfg-options',
                   *TINY, f'train_dataloader.dataset.source_bank={bank}', 'custom_hooks=[]',
                   'log_processor.window_size=1', 'log_processor.num_digits=8'], cwd=workspace)
    rows = _logged_losses(log, ('loss_cls', 'loss_fg', 'loss_bg'))
    assert len(rows) == 4
    for row in rows:
        total = row['loss_cls'] + row['loss_fg'] + row['loss_bg']
        assert row['loss'] == pytest.approx(total, rel=3e-7, abs=3e-8)  # float32 sum of 8-digit values
        assert row['loss_cls'] > 0 and row['loss_fg'] >= 0 and row['loss_bg'] >= 0
    # 5 of the 24 toy images are multi-label (paired); with the config's seed some of the 4 batches draws one
    assert any(row['loss_fg'] > 1e-6 for row in rows) and any(row['loss_bg'] > 1e-6 for row in rows)


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


# Stand-ins for slurm's srun and scontrol (this machine has no slurm): srun starts --ntasks copies of the command
# here with the variables srun gives each task; scontrol resolves the node list to this host. The tools and
# the training they run are the real ones.
_SRUN = r'''#!/usr/bin/env bash
echo "$@" > "$SRUN_ARGS_FILE"
ntasks=1
while [[ $# -gt 0 && "$1" == -* ]]; do
  case "$1" in
    --ntasks=*) ntasks="${1#--ntasks=}" ;;
    -p) shift ;;
  esac
  shift
done
pids=()
for ((i = 0; i < ntasks; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks SLURM_NODELIST=node-a "$@" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
'''
_SCONTROL = '#!/usr/bin/env bash\n[ "$1 $2 $3" = "show hostnames node-a" ] && echo 127.0.0.1\n'


@pytest.fixture
def slurm_env(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', _SRUN), ('scontrol', _SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ('MASTER_ADDR', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK')}
    env.update(PATH=f'{bin_dir}:{env["PATH"]}', PYTHON=sys.executable, MASTER_PORT=str(_free_port()),
               OMP_NUM_THREADS='1', SRUN_ARGS_FILE=str(tmp_path / 'srun_args'))
    return env, tmp_path / 'srun_args'


def test_slurm_train_two_tasks(workspace, baseline, slurm_env):
    env, srun_args = slurm_env
    work = workspace / 'work_dirs/slurm'
    env.update(GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1')
    proc = subprocess.run(['bash', str(REPO / 'tools/slurm_train.sh'), 'debug', 'csd_toy', str(BASE_CFG),
                           '--work-dir', str(work), '--cfg-options', *TINY, 'train_dataloader.batch_size=2'],
                          cwd=workspace, capture_output=True, text=True, env=env, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    args = srun_args.read_text().split()
    assert args[:2] == ['-p', 'debug'] and '--job-name=csd_toy' in args and '--ntasks=2' in args
    assert '--gres=gpu:2' in args and '--ntasks-per-node=2' in args and '--cpus-per-task=1' in args
    assert args[args.index(str(BASE_CFG)) + 1] == '--launcher=slurm'
    assert 'Distributed training: True' in log and (work / 'iter_4.pth').is_file()
    done = [int(n) for n in re.findall(r'CAM generation: (\d+) of', log)]
    assert sum(done) == len(_ids(workspace, 'train_aug')) and len(done) == 1  # logged by rank 0 only
    assert sorted(p.stem for p in (work / 'cams').glob('*.npz')) == sorted(_ids(workspace, 'train_aug'))


def test_slurm_test_on_cpu_nodes(workspace, baseline, slurm_env):
    """GPUS_PER_NODE=0: no --gres; one task tests the checkpoint with --launcher slurm (a gloo group of 1)."""
    env, srun_args = slurm_env
    work, _ = baseline
    env.update(GPUS='1', GPUS_PER_NODE='0')
    proc = subprocess.run(['bash', str(REPO / 'tools/slurm_test.sh'), 'cpu', 'csd_test', str(BASE_CFG),
                           str(work / 'iter_4.pth'), '--work-dir', str(workspace / 'work_dirs/slurm_test'),
                           '--no-save-cams'], cwd=workspace, capture_output=True, text=True, env=env, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    args = srun_args.read_text().split()
    assert not any(a.startswith(('--gres', '--ntasks-per-node')) for a in args) and '--ntasks=1' in args
    assert args[-4:] == ['--launcher=slurm', '--work-dir', str(workspace / 'work_dirs/slurm_test'), '--no-save-cams']
    assert 'Distributed training: True' in log
    assert 0.0 < float(re.search(r'seed/mIoU: ([0-9.]+)', log).group(1)) <= 100.0
