"""Killed runs (SIGKILL, no chance to clean up) resumed by running the same command again: the pseudo-mask
export, the source bank and the whole pipeline (its training child included).

Each test starts the real tool in a subprocess, waits until some of its output files exist, kills it, checks
that every final file on disk is complete, reruns it and compares the final file set and contents with an
uninterrupted run: nothing truncated, nothing missing, nothing twice, no temporary file left behind.
"""
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # real tools in subprocesses, killed and rerun

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS='1')


def _kill_when(proc: subprocess.Popen, folder: Path, pattern: str, k: int, timeout: float = 300) -> int:
    """SIGKILLs ``proc`` once ``folder`` holds ``k`` files matching ``pattern``; returns how many it held then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = len(list(folder.glob(pattern))) if folder.is_dir() else 0
        if n >= k:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            assert proc.returncode == -signal.SIGKILL, 'the tool finished before it could be killed'
            return n
        assert proc.poll() is None, f'the tool ended ({proc.returncode}) before writing {k} files'
        time.sleep(0.005)
    proc.kill()
    raise AssertionError(f'{folder} did not get {k} files in {timeout} s')


def _lock_free_within(path: Path, timeout: float) -> bool:
    """Whether an exclusive flock on ``path`` can be taken within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with open(path) as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
                continue
            fcntl.flock(f, fcntl.LOCK_UN)
            return True


def _no_temp_files(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith('.tmp')], f'temporary files left in {folder}'


@pytest.fixture(scope='module')
def toy(tmp_path_factory, write_stand_in_cams):
    """120 toy images (enough that a tool is still writing when killed) and stand-in CAMs of them."""
    import csd_mm  # noqa: F401
    from csd_mm.datasets import make_toy_voc
    root = tmp_path_factory.mktemp('crash')
    make_toy_voc(str(root / 'toy_voc'), num_train=120, num_val=4, seed=3)
    ids = write_stand_in_cams(root / 'toy_voc', root / 'cams')
    return root, ids


def test_killed_pseudo_mask_export_resumes_to_the_uninterrupted_masks(toy, tmp_path):
    from csd_mm.refine import export_pseudo_masks
    from csd_mm.refine.refiners import DenseCRFRefiner
    from csd_mm.utils.fileio import read_png
    root, ids = toy
    split = root / 'toy_voc/ImageSets/Segmentation/train_aug.txt'
    out = tmp_path / 'masks'
    cmd = [sys.executable, str(REPO / 'tools/make_pseudo_masks.py'), str(root / 'cams'),
           str(root / 'toy_voc/JPEGImages'), str(out), '--refiner', 'crf', '--bg-threshold', '0.3', '--ids',
           str(split), '--num-workers', '2', '--no-progress']
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_at = _kill_when(proc, out, '*.png', 3)
    time.sleep(1.0)  # the pool workers die with the tool: nothing is written after the kill
    before = {p.name for p in out.glob('*.png')}
    assert killed_at <= len(before) < len(ids)
    time.sleep(1.0)
    assert {p.name for p in out.glob('*.png')} == before, 'an orphaned worker kept writing'
    for name in before:  # every final file is complete
        read_png(str(out / name))
    subprocess.run(cmd, env=_env(), check=True, capture_output=True)
    reference = tmp_path / 'reference'
    export_pseudo_masks(str(root / 'cams'), str(root / 'toy_voc/JPEGImages'), ids, str(reference),
                        dict(type=DenseCRFRefiner, bg_threshold=0.3), progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    for img_id in ids:
        np.testing.assert_array_equal(read_png(str(out / f'{img_id}.png')),
                                      read_png(str(reference / f'{img_id}.png')), err_msg=img_id)
    _no_temp_files(out)


_BUILD_BANK = '''
import sys
import numpy as np
from csd_mm.datasets import build_source_bank, load_cls_labels
root, out = sys.argv[1:]
ids = open(root + '/toy_voc/ImageSets/Segmentation/train_aug.txt').read().split()
labels = load_cls_labels(root + '/toy_voc/cls_labels.npy')
build_source_bank(out, ids, np.stack([labels[i] for i in ids]), cam_dir=root + '/cams', progress=False)
'''


def test_killed_source_bank_build_resumes_to_the_uninterrupted_bank(toy, tmp_path):
    import json
    from csd_mm.utils.fileio import read_png
    root, _ = toy
    bank, reference = tmp_path / 'bank', tmp_path / 'reference'
    cmd = [sys.executable, '-c', _BUILD_BANK, str(root)]
    proc = subprocess.Popen(cmd + [str(bank)], env=_env(), cwd=REPO)
    _kill_when(proc, bank / 'masks', '*.png', 3)
    assert not (bank / 'index.json').exists()  # written last: the bank is not taken as complete
    subprocess.run(cmd + [str(bank)], env=_env(), cwd=REPO, check=True)
    from csd_mm.datasets import build_source_bank, load_cls_labels  # the uninterrupted run, in this process
    ids = (root / 'toy_voc/ImageSets/Segmentation/train_aug.txt').read_text().split()
    labels = load_cls_labels(str(root / 'toy_voc/cls_labels.npy'))
    build_source_bank(str(reference), ids, np.stack([labels[i] for i in ids]), cam_dir=str(root / 'cams'),
                      progress=False)
    assert json.loads((bank / 'index.json').read_text()) == json.loads((reference / 'index.json').read_text())
    assert sorted(p.name for p in bank.iterdir()) == sorted(p.name for p in reference.iterdir())
    names = sorted(p.name for p in (reference / 'masks').iterdir())
    assert sorted(p.name for p in (bank / 'masks').iterdir()) == names
    for name in names:
        np.testing.assert_array_equal(read_png(str(bank / 'masks' / name)), read_png(str(reference / 'masks' / name)))
    _no_temp_files(bank / 'masks')



def test_killed_pipeline_ends_its_training_and_a_rerun_completes(tmp_path, pid_gone):
    """SIGKILL of tools/run_pipeline.py while its baseline training child writes CAMs: the child dies with it
    (its work-dir lock is free as soon as its last thread has exited), and the same command finishes the CAMs,
    the bank and the seeds."""
    import csd_mm  # noqa: F401
    from csd_mm.datasets import make_toy_voc
    from csd_mm.datasets.source_bank import source_bank_complete
    from csd_mm.utils.cam_io import load_cam
    make_toy_voc(str(tmp_path / 'data/toy_voc'), num_train=24, num_val=4, seed=3)
    work = tmp_path / 'work'
    base = work / 'seed0/resnet/baseline'
    cmd = [sys.executable, str(REPO / 'tools/run_pipeline.py'), '--work-dir', str(work), '--data-root',
           'data/toy_voc', '--iters', '4', '--until', 'seeds', '--csd-variant', 'none', '--cfg-options',
           'train_dataloader.batch_size=4', 'default_hooks.checkpoint.interval=2']
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, base / 'cams', '*.npz', 2)
    stage_log = base / 'pipeline_stage.log'
    assert (base / '.lock').is_file(), (f'no training lock in {base}: {sorted(p.name for p in base.iterdir())}; '
                                        f'log: {stage_log.read_text()[-3000:] if stage_log.is_file() else None}')
    holder = (base / '.lock').read_text()  # 'pid N: ...' of the training child
    child = int(holder.split()[1].rstrip(':'))
    assert child != proc.pid
    assert pid_gone(child, 10), f'the training child {child} outlived the killed pipeline'
    # free: no live process holds the training's lock. A zombie main thread counts as gone while the process's
    # other threads (the CAM writer's, in a file write) may still be exiting: the kernel drops the lock with
    # the last of them, moments later
    assert _lock_free_within(base / '.lock', 10), f'the lock of {base} is still held after its process ended'
    ids = (tmp_path / 'data/toy_voc/ImageSets/Segmentation/train_aug.txt').read_text().split()
    written = sorted(p.stem for p in (base / 'cams').glob('*.npz'))
    assert 2 <= len(written) < len(ids)
    for img_id in written:
        load_cam(str(base / 'cams' / f'{img_id}.npz'))  # complete
    # the killed pass recorded its in-memory weights: those of its last checkpoint, which the rerun resumes
    from csd_mm.utils.cam_io import read_cam_record
    from csd_mm.utils.checkpoint import read_state_dict, weights_fingerprint
    record = read_cam_record(str(base / 'cams'))
    assert record['iteration'] == 4
    assert record['fingerprint'] == weights_fingerprint(read_state_dict(str(base / 'iter_4.pth')))
    log = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert log.returncode == 0, log.stdout[-3000:] + log.stderr[-3000:]
    stage_log = (base / 'pipeline_stage.log').read_text()
    assert 'resumed epoch: 0, iter: 4' in stage_log  # the finished training was not redone
    assert f'CAM generation: {len(ids) - len(written)} of {len(ids)} images' in stage_log
    assert sorted(p.stem for p in (base / 'cams').glob('*.npz')) == sorted(ids)
    assert read_cam_record(str(base / 'cams')) == record  # the same weights finished the folder
    _no_temp_files(base / 'cams')
    assert source_bank_complete(str(base / 'source_bank'))
    assert (work / 'results.json').is_file() and (work / 'seed0/resnet/csd/cams').is_dir()


def test_a_second_pipeline_in_a_held_work_dir_is_refused_naming_the_holder(tmp_path):
    """While a live process holds the pipeline's work-dir lock, tools/run_pipeline.py stops before doing anything
    and names the holder (the holder stands in for a running pipeline: it takes the same lock)."""
    from csd_mm.utils import process
    work, ready = tmp_path / 'work', tmp_path / 'ready'
    load = (f'import importlib.util; spec = importlib.util.spec_from_file_location("process", {process.__file__!r});'
            ' process = importlib.util.module_from_spec(spec); spec.loader.exec_module(process)')
    holder = subprocess.Popen([sys.executable, '-c', f'{load}; process.lock_work_dir({str(work)!r}); '
                               f'open({str(ready)!r}, "w").write("1"); import time; time.sleep(120)'])
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        out = subprocess.run([sys.executable, str(REPO / 'tools/run_pipeline.py'), '--work-dir', str(work),
                              '--data-root', str(tmp_path / 'data')], env=_env(), capture_output=True, text=True)
    finally:
        holder.kill()
    assert out.returncode != 0
    assert 'is in use by another pipeline' in out.stderr and f'held by pid {holder.pid}' in out.stderr
    assert not (tmp_path / 'data').exists()  # refused before generating anything
