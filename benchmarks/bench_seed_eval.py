"""Seed evaluation of a folder of CAM files: the 60-threshold sweep against one threshold and against re-reading.

    python benchmarks/bench_seed_eval.py [--size tiny|toy|voc] [--work-dir work_dirs/benchmarks]

On synthetic CAM files (``csd_mm.utils.cam_io`` format, 1-3 classes, 21 classes) and masks it times
``evaluate_cam_folder`` (what ``tools/analysis/eval_seeds.py --num-workers 2`` runs) over the whole folder with the
60 thresholds and with one, and, on a subset in this process, the sweep against a reference that, like MCTformer's
``evaluation.py``, re-reads every CAM file and mask for every threshold and scores ``seed_from_cam``; their
confusion matrices must be identical. Targets (docs/benchmarks.md): sweep / one threshold <= 2x, reference / sweep >= 10x,
1,464 VOC-sized CAMs (375x500) swept in under 30 s on 2 cores.
"""
import os
import os.path as osp
import time
from typing import Callable, Dict, List

import numpy as np

from csd_mm.evaluation.functional import default_thresholds, evaluate_cam_folder, seed_from_cam
from csd_mm.utils.cam_io import cam_path, load_cam, save_cam
from csd_mm.utils.fileio import read_png, write_png
from _common import section, standalone_main

# size: (number of CAM files, (H, W), files of the re-reading reference)
SETTINGS = dict(tiny=(12, (32, 32), 12), toy=(2000, (96, 96), 100), voc=(1464, (375, 500), 20))
NUM_CLASSES = 21


def make_cam_folder(root: str, num: int, hw: tuple, seed: int = 0) -> List[str]:
    """Writes ``num`` synthetic CAM files and masks under ``root`` (kept: a rerun reuses them)."""
    ids = [f'{i:06d}' for i in range(num)]
    done = osp.join(root, 'done')
    if osp.isfile(done):
        return ids
    rng = np.random.default_rng(seed)
    for img_id in ids:
        keys = np.sort(rng.choice(NUM_CLASSES - 1, size=rng.integers(1, 4), replace=False))
        save_cam(cam_path(osp.join(root, 'cams'), img_id), rng.random((len(keys), *hw), dtype=np.float32), keys)
        gt = rng.integers(0, NUM_CLASSES, size=hw).astype(np.uint8)
        gt[rng.random(hw) < 0.05] = 255
        write_png(osp.join(root, 'gt', img_id + '.png'), gt)
    open(done, 'w').close()
    return ids


def reread_reference(cam_dir: str, gt_dir: str, ids: List[str], thresholds: np.ndarray) -> np.ndarray:
    """Confusion per threshold the slow way: every file re-read and every seed map made for every threshold."""
    n = NUM_CLASSES
    conf = np.zeros((len(thresholds), n, n), np.int64)
    for i, t in enumerate(thresholds):
        for img_id in ids:
            cam, keys = load_cam(cam_path(cam_dir, img_id))
            gt = read_png(osp.join(gt_dir, img_id + '.png'))
            valid = gt != 255
            pred = seed_from_cam(cam, keys, t)
            conf[i] += np.bincount(n * gt[valid].astype(np.int64) + pred[valid],
                                   minlength=n * n).reshape(n, n)
    return conf


def run(size: str, device: str, work_dir: str, log: Callable = print) -> Dict:
    num, hw, num_ref = SETTINGS[size]
    root = osp.join(work_dir, f'seed_eval_{size}')
    log(f'  writing {num} synthetic CAM files {hw[0]}x{hw[1]} to {root} (once)')
    ids = make_cam_folder(root, num, hw)
    cam_dir, gt_dir = osp.join(root, 'cams'), osp.join(root, 'gt')
    thresholds = default_thresholds()
    workers = min(2, os.cpu_count() or 1)

    def evaluate(which: List[str], ts, num_workers: int = 0) -> tuple:
        start = time.perf_counter()
        res = evaluate_cam_folder(cam_dir, gt_dir, which, NUM_CLASSES, ts, progress=False,
                                  num_workers=num_workers)
        return time.perf_counter() - start, res

    # the whole folder with the worker pool (what the targets are about), then in-process on the reference's subset
    sweep, res = evaluate(ids, thresholds, workers)
    single, _ = evaluate(ids, [0.30], workers)
    log(f'  {workers} workers: sweep {sweep:.2f} s, one threshold {single:.2f} s')
    sub = ids[:num_ref]
    sweep_sub, res_sub = evaluate(sub, thresholds)
    start = time.perf_counter()
    ref = reread_reference(cam_dir, gt_dir, sub, thresholds)
    reread = time.perf_counter() - start
    identical = bool(np.array_equal(ref, res_sub['confusion']))
    log(f'  re-reading reference on {len(sub)} files: {reread:.2f} s vs sweep {sweep_sub:.2f} s in this process '
        f'(identical: {identical})')
    rows = [[f'{num} x {hw[0]}x{hw[1]}', f'{sweep:.2f} s', f'{single:.2f} s', f'{sweep / single:.2f}x',
             f'{sweep_sub / len(sub) * 1000:.2f} ms',
             f'{len(sub)} files: {reread:.2f} s vs {sweep_sub:.2f} s = {reread / sweep_sub:.0f}x'
             f'{", identical" if identical else ", DIFFERENT"}']]
    targets = {'sweep / one threshold <= 2x': sweep / single <= 2.0,
               'reference re-reading / sweep >= 10x, identical': reread / sweep_sub >= 10 and identical}
    if size == 'voc':
        targets[f'1,464 VOC-sized CAMs swept in < 30 s ({workers} workers)'] = sweep < 30
    return section('Seed evaluation (`benchmarks/bench_seed_eval.py`)',
                   ['CAM files', f'60-threshold sweep, {workers} workers', f'one threshold, {workers} workers',
                    'sweep / one', 'sweep per file, 1 process', 'reference re-reading per threshold / sweep'], rows,
                   ['`evaluate_cam_folder` as `tools/analysis/eval_seeds.py` runs it (`--num-workers`); the '
                    'reference re-reads every CAM file and mask for every threshold, as MCTformer\'s '
                    '`evaluation.py` does, and must give identical confusion matrices.'], targets)


if __name__ == '__main__':
    standalone_main(run, __doc__, SETTINGS, cuda=False)
