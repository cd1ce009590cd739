"""End to end: the stock tools on a tiny generated toy dataset, real Runner, real files.

tools/train.py (baseline) -> CAM hook writes CAMs + source bank -> tools/test.py writes CAMs, draws them
(--show-dir) and reports the seed sweep -> resume from a checkpoint (weights_only loading) -> CSD training on the
bank -> 2-process (gloo) training with tools/dist_train.sh and with tools/slurm_train.sh, each CAM written
exactly once; tools/slurm_test.sh; 2-process CAM pass, source bank, tools/dist_test.sh CAMs, seed sweep and
pseudo masks equal to the 1-process ones.
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


@pytest.fixture(scope='module')
def single_test(workspace, baseline, run_tool):
    """tools/test.py in one process on the baseline's checkpoint: its CAM folder and log."""
    work, _ = baseline
    cam_dir, show_dir = workspace / 'test_cams', workspace / 'test_vis'
    log = run_tool([REPO / 'tools/test.py', BASE_CFG, work / 'iter_4.pth', '--work-dir', workspace / 'work_dirs/test',
                   '--cam-dir', cam_dir, '--show-dir', show_dir], cwd=workspace)
    return cam_dir, show_dir, log


def test_test_tool_writes_cams_and_reports_seed_miou(workspace, single_test):
    cam_dir, show_dir, out = single_test
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


def test_stale_outputs_are_refused_as_one_error_line_before_any_step(workspace, baseline, single_test):
    """A new training into a work dir with another training's CAMs and bank stops before its first iteration,
    and tools/test.py with another checkpoint refuses the CAM folder of the first: one ``error:`` line each."""
    import shutil
    work, _ = baseline
    again = workspace / 'work_dirs/again'
    for name in ('cams', 'source_bank'):
        shutil.copytree(work / name, again / name)
    proc = subprocess.run([sys.executable, str(REPO / 'tools/train.py'), str(BASE_CFG), '--work-dir', str(again),
                           '--cfg-options', *TINY], cwd=workspace, capture_output=True, text=True)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: {again / "cams"} holds the CAMs of weights ') and last.endswith(
        f'Delete {again / "cams"} and {again / "source_bank"} (or set other out_dirs of the CAMGenerationHook) '
        'before training.')
    assert 'Iter(train)' not in proc.stdout + proc.stderr and not list(again.glob('*.pth'))
    cam_dir, _, _ = single_test
    proc = subprocess.run([sys.executable, str(REPO / 'tools/test.py'), str(BASE_CFG), str(work / 'iter_2.pth'),
                           '--work-dir', str(workspace / 'work_dirs/test_other'), '--cam-dir', str(cam_dir)],
                          cwd=workspace, capture_output=True, text=True)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f'error: CAM folder {cam_dir} holds the CAMs of other weights: written by weights ')


def test_test_tool_records_a_cam_folder_written_before_records_once_it_rewrote_all(workspace, baseline, single_test,
                                                                                   run_tool):
    """A CAM folder with CAM files but no .cams_of.json (written before CAM folders recorded their weights):
    tools/test.py rewrites its CAMs and, having rewritten every file, records its weights. (Runs that die midway
    or leave a file they did not write record nothing: tests/engine/hooks/test_cam_generation_hook.py.)"""
    import shutil
    from csd_mm.utils.cam_io import CAM_RECORD_FILE, load_cam, read_cam_record, save_cam
    from csd_mm.utils.checkpoint import read_state_dict, weights_fingerprint
    work, _ = baseline
    single_cams, _, _ = single_test
    legacy = workspace / 'legacy_cams'
    shutil.copytree(single_cams, legacy)
    (legacy / CAM_RECORD_FILE).unlink()
    ids = _ids(workspace, 'train')
    cam, keys = load_cam(str(legacy / f'{ids[0]}.npz'))
    save_cam(str(legacy / f'{ids[0]}.npz'), cam * 0, keys)  # another model's file: rewritten too
    log = run_tool([REPO / 'tools/test.py', BASE_CFG, work / 'iter_4.pth', '--work-dir',
                    workspace / 'work_dirs/test_legacy', '--cam-dir', legacy], cwd=workspace)
    assert f'CAM folder {legacy} has no {CAM_RECORD_FILE}' in log
    assert read_cam_record(str(legacy)) == dict(
        fingerprint=weights_fingerprint(read_state_dict(str(work / 'iter_4.pth'))),
        checkpoint=str(work / 'iter_4.pth'), iteration=None)
    _same_cams(single_cams, legacy, ids)


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


def _same_cams(dir_a: Path, dir_b: Path, ids) -> None:
    """The same CAM files (names, keys, maps; bit-identical float16 maps: same weights, same batches of 1)."""
    from csd_mm.utils.cam_io import load_cam
    assert sorted(p.name for p in dir_a.iterdir()) == sorted(p.name for p in dir_b.iterdir())
    assert sorted(p.stem for p in dir_a.glob('*.npz')) == sorted(ids)
    for img_id in ids:
        cam_a, keys_a = load_cam(str(dir_a / f'{img_id}.npz'))
        cam_b, keys_b = load_cam(str(dir_b / f'{img_id}.npz'))
        np.testing.assert_array_equal(keys_a, keys_b)
        np.testing.assert_array_equal(cam_a, cam_b, err_msg=img_id)


def _per_rank(log: str, pattern: str) -> list:
    counts = re.findall(pattern + r'\[(\d+), (\d+)\]', log)
    assert len(counts) == 1, log[-3000:]  # logged once, by rank 0
    return [int(c) for c in counts[0]]


def test_dist_cam_pass_and_source_bank_match_one_process(workspace, baseline):
    """The after-training CAM pass and the source bank with 2 gloo processes (tools/dist_train.sh resuming the
    1-process baseline's last checkpoint, so no iteration runs) equal the 1-process ones, each CAM written by
    exactly one rank."""
    work, _ = baseline
    dist = workspace / 'work_dirs/dist_cams'
    dist.mkdir(parents=True)
    (dist / 'iter_4.pth').write_bytes((work / 'iter_4.pth').read_bytes())
    (dist / 'last_checkpoint').write_text(str(dist / 'iter_4.pth'))
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', str(REPO / 'tools/dist_train.sh'), str(BASE_CFG), '2', '--work-dir', str(dist),
                           '--resume', '--cfg-options', *TINY], cwd=workspace, capture_output=True, text=True,
                          env=env, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert 'Distributed training: True' in log and 'resumed epoch: 0, iter: 4' in log
    ids = _ids(workspace, 'train_aug')
    counts = _per_rank(log, r'CAM generation: written per rank ')
    assert sum(counts) == len(ids) and min(counts) > 0  # both ranks worked, no image twice
    _same_cams(work / 'cams', dist / 'cams', ids)
    index = json.loads((dist / 'source_bank/index.json').read_text())
    reference = json.loads((work / 'source_bank/index.json').read_text())
    assert index['entries'] == reference['entries']
    from csd_mm.utils.fileio import read_png
    for entry in index['entries']:
        np.testing.assert_array_equal(read_png(str(dist / 'source_bank' / entry['mask'])),
                                      read_png(str(work / 'source_bank' / entry['mask'])))


def test_dist_test_matches_one_process_cams_seeds_and_pseudo_masks(workspace, baseline, single_test):
    """tools/dist_test.sh with 2 gloo processes writes the CAMs of tools/test.py in one process, reports the
    same seed sweep, and the pseudo masks of both folders are the same."""
    work, _ = baseline
    single_cams, _, single_log = single_test
    cam_dir = workspace / 'dist_test_cams'
    # the folder holds CAM files of no record (as written before CAM folders recorded their weights), all wrong:
    # the run rewrites each, and rank 0 records the weights once both ranks' writers closed
    from csd_mm.utils.cam_io import load_cam, read_cam_record, save_cam
    from csd_mm.utils.checkpoint import read_state_dict, weights_fingerprint
    ids = _ids(workspace, 'train')
    for img_id in ids:
        cam, keys = load_cam(str(single_cams / f'{img_id}.npz'))
        save_cam(str(cam_dir / f'{img_id}.npz'), cam * 0, keys)
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    show_dir = workspace / 'dist_test_vis'
    proc = subprocess.run(['bash', str(REPO / 'tools/dist_test.sh'), str(BASE_CFG), str(work / 'iter_4.pth'), '2',
                           '--work-dir', str(workspace / 'work_dirs/dist_test'), '--cam-dir', str(cam_dir),
                           '--show-dir', str(show_dir)],
                          cwd=workspace, capture_output=True, text=True, env=env, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    counts = _per_rank(log, r'CAM files written per rank: ')
    assert sum(counts) == len(ids) and min(counts) > 0
    _same_cams(single_cams, cam_dir, ids)
    fingerprint = weights_fingerprint(read_state_dict(str(work / 'iter_4.pth')))
    assert read_cam_record(str(cam_dir))['fingerprint'] == fingerprint
    # --show-dir: rank 0 draws every image (mmengine's visualizers draw on rank 0 only)
    assert sorted(p.stem for p in show_dir.glob('*.png')) == sorted(ids)
    for key in ('mIoU', 'best_threshold'):  # the seed sweep, gathered over the ranks
        pattern = rf'seed/{key}: ([0-9.]+)'
        assert re.search(pattern, log).group(1) == re.search(pattern, single_log).group(1)
    from csd_mm.refine import export_pseudo_masks
    from csd_mm.refine.refiners import DenseCRFRefiner
    from csd_mm.utils.fileio import read_png
    refiner = dict(type=DenseCRFRefiner, bg_threshold=0.3)
    img_dir = str(workspace / 'data/toy_voc/JPEGImages')
    export_pseudo_masks(str(single_cams), img_dir, ids, str(workspace / 'masks_1'), refiner, progress=False)
    export_pseudo_masks(str(cam_dir), img_dir, ids, str(workspace / 'masks_2'), refiner, num_workers=2,
                        progress=False)
    for img_id in ids:
        np.testing.assert_array_equal(read_png(str(workspace / 'masks_1' / f'{img_id}.png')),
                                      read_png(str(workspace / 'masks_2' / f'{img_id}.png')), err_msg=img_id)


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
