"""Pseudo-mask refinement throughput: dense CRF, PSA and IRN random walks, images/s with 1 and 2 workers.

    python benchmarks/bench_refine.py [--size tiny|toy|voc]

``export_pseudo_masks`` (what ``tools/make_pseudo_masks.py --num-workers N`` runs: mmengine's
``track_parallel_progress`` pool, one torch thread per worker) over a synthetic VOC-layout dataset
(``make_toy_voc``: 64x64 for ``toy``, 500x500 for ``voc``) with smooth random CAMs of 1-3 classes; the random
walks use the configs' refiners (``configs/psa_affinity``, ``configs/irn``; toy twins for ``toy``) with random
init. Always on CPU (the refiners run in CPU worker processes). Target: throughput scales with the workers.
"""
import os.path as osp
import shutil
import time
from typing import Callable, Dict

import cv2
import numpy as np
from mmengine.config import Config

import csd_mm  # noqa: F401
from csd_mm.datasets import load_cls_labels, read_split
from csd_mm.refine import export_pseudo_masks
from csd_mm.utils.cam_io import cam_path, save_cam
from _common import section, standalone_main
from bench_data import toy_dataset

REFINERS = dict(toy=dict(crf=None, psa='configs/toy/aff_resnet18_1xb8_200it_toy_64x64.py',
                         irn='configs/toy/irn_resnet18_1xb8_200it_toy_64x64.py'),
                voc=dict(crf=None, psa='configs/psa_affinity/aff_resnet50_1xb8_5e_voc12_448.py',
                         irn='configs/irn/irn_resnet50_1xb32_3e_voc12aug_512.py'))
# size: (image side, images); --size voc --device cpu uses the same (refinement always runs on CPU)
SETTINGS = dict(tiny=(64, 4), toy=(64, 24), voc=(500, 4))


def make_cams(data: Dict, ids, out_dir: str, seed: int = 0) -> None:
    """Smooth random CAMs (a 8x8 grid upsampled) of each image's own classes, at the image size."""
    labels = load_cls_labels(osp.join(data['root'], 'cls_labels.npy'))
    rng = np.random.default_rng(seed)
    for img_id in ids:
        if osp.isfile(cam_path(out_dir, img_id)):
            continue
        h, w = cv2.imread(osp.join(data['root'], 'JPEGImages', img_id + '.jpg')).shape[:2]
        keys = np.flatnonzero(labels[img_id])
        cam = np.stack([cv2.resize(rng.random((8, 8), np.float32), (w, h)) for _ in keys]) if len(keys) else \
            np.zeros((0, h, w), np.float32)
        save_cam(cam_path(out_dir, img_id), cam, keys)


def refiner_config(name: str, size: str):
    if name == 'crf':
        return dict(type='DenseCRFRefiner')
    cfg = Config.fromfile(REFINERS['voc' if size == 'voc' else 'toy'][name])
    refiner = cfg.refiner.to_dict()
    refiner['checkpoint'] = None  # random init: the compute is the same
    return refiner


def run(size: str, device: str, work_dir: str, log: Callable = print) -> Dict:
    side, num = SETTINGS[size]
    data = toy_dataset(work_dir, side, max(num, 24))
    ids = read_split(osp.join(data['root'], 'ImageSets/Segmentation/train_aug.txt'))[:num]
    cam_dir = osp.join(work_dir, f'refine_{side}', 'cams')
    make_cams(data, ids, cam_dir)
    rows, targets = [], {}
    for name in ('crf', 'psa', 'irn'):
        rates = {}
        for workers in (1, 2):
            out = osp.join(work_dir, f'refine_{side}', f'{name}_{workers}')
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            export_pseudo_masks(cam_dir, osp.join(data['root'], 'JPEGImages'), ids, out,
                                refiner_config(name, size), num_workers=workers, progress=False)
            rates[workers] = len(ids) / (time.perf_counter() - start)
        log(f'  {name}: {rates[1]:.2f} images/s with 1 worker, {rates[2]:.2f} with 2')
        rows.append([name, f'{rates[1]:.2f}', f'{rates[2]:.2f}', f'{rates[2] / rates[1]:.2f}x'])
        targets[f'{name}: 2 workers faster than 1'] = rates[2] > 1.2 * rates[1]
    return section('Refinement throughput (`benchmarks/bench_refine.py`)',
                   ['refiner', 'images/s, 1 worker', 'images/s, 2 workers', '2 / 1'], rows,
                   [f'`export_pseudo_masks` on {num} synthetic {side}x{side} images (random-init networks for the '
                    'random walks, CPU worker processes); the times include starting the pool and building the '
                    'refiner in each worker, as `tools/make_pseudo_masks.py` does. On a busy 2-core machine 2 '
                    'workers cannot double anything.'], targets)


if __name__ == '__main__':
    standalone_main(run, __doc__, SETTINGS, cuda=False)
