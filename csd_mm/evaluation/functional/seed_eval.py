"""Seed evaluation of a folder of CAM files against ground-truth masks, and the report of a sweep.

The file-level companion of :mod:`csd_mm.evaluation.functional.seed_sweep` (which stays pure numpy): it reads
each CAM file (:mod:`csd_mm.utils.cam_io`) and each ground-truth mask once, accumulates the one-pass sweep
confusion of every image and reports the best background score, the per-class IoU there and the whole curve,
as Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation" (BMVC 2023)
report seed mIoU on VOC train (seed protocol of IRN, Ahn et al., CVPR 2019).
"""
import io
import json
import math
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmengine.utils import track_iter_progress, track_parallel_progress
from prettytable import PrettyTable

from csd_mm.utils.cam_io import cam_path, check_cam_folder, load_cam
from csd_mm.utils.fileio import atomic_write, read_png
from .seed_sweep import default_thresholds, summarize_sweep, sweep_confusion

__all__ = ['evaluate_cam_folder', 'format_sweep', 'sweep_to_dict',
           'dump_sweep_json']


_CHUNK = 64  # images per worker task


def _image_confusion(cam_dir: str, gt_dir: str, num_classes: int, thresholds: np.ndarray, ignore_index: int,
                     gt_suffix: str, img_id: str) -> np.ndarray:
    """The sweep confusion ``[T, N, N]`` of one image; errors name its CAM file and mask."""
    cfile = cam_path(cam_dir, img_id)
    gfile = os.path.join(gt_dir, img_id + gt_suffix)
    cam, keys = load_cam(cfile)
    gt = read_png(gfile)
    if gt.shape != cam.shape[1:]:
        raise ValueError(f'ground-truth mask {gfile} has size {gt.shape} but its CAM file {cfile} has '
                         f'size {cam.shape[1:]}')
    try:
        return sweep_confusion(cam, keys, gt, num_classes, thresholds, ignore_index)
    except ValueError as e:
        raise ValueError(f'{cfile} / {gfile}: {e}') from e


def _chunk_confusion(task: Tuple[tuple, List[str]]) -> np.ndarray:
    """Worker task: the summed sweep confusion of a chunk of images."""
    args, ids = task
    conf = _image_confusion(*args, ids[0])
    for img_id in ids[1:]:
        conf += _image_confusion(*args, img_id)
    return conf


def evaluate_cam_folder(cam_dir: str,
                        gt_dir: str,
                        ids: Sequence[str],
                        num_classes: int,
                        thresholds: Optional[Sequence[float]] = None,
                        progress: bool = True,
                        ignore_index: int = 255,
                        gt_suffix: str = '.png',
                        num_workers: int = 0) -> Dict:
    """Sweeps the background score over a folder of CAM files.

    Args:
        cam_dir (str): Folder of ``<id>.npz`` CAM files.
        gt_dir (str): Folder of ``<id><gt_suffix>`` ground-truth masks.
        ids (Sequence[str]): Image ids to evaluate (e.g. from :func:`csd_mm.datasets.read_split`).
        num_classes (int): Number of classes including background.
        thresholds (Sequence[float], optional): Ascending background scores; None for 0.00 .. 0.59.
        progress (bool): Show mmengine's progress bar (on stderr). Defaults to True.
        ignore_index (int): Ignored ground-truth value. Defaults to 255.
        gt_suffix (str): Suffix of the mask files. Defaults to '.png'.
        num_workers (int): Worker processes reading and sweeping the files (mmengine's
            ``track_parallel_progress``); 0 or 1: in this process. The sums are exact, so the result does not
            depend on it. Defaults to 0.

    Returns:
        dict: The result of :func:`summarize_sweep` plus ``confusion`` (``int64 [T, N, N]``, summed over the
        images), ``thresholds`` (float64 ``[T]``) and ``num_images``.

    Raises:
        FileNotFoundError: If a CAM file or mask is missing (the message names the files).
        ValueError: If a file is invalid or a mask's size differs from its CAM's (the message names both).
    """
    thresholds = default_thresholds() if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    ids = list(ids)
    if not ids:
        raise ValueError('no image ids to evaluate')
    check_cam_folder(cam_dir, ids, num_classes - 1)  # CAMs of another dataset: refused before the sweep
    args = (cam_dir, gt_dir, num_classes, thresholds, ignore_index, gt_suffix)
    bar_file = sys.stderr if progress else io.StringIO()  # mmengine's bars always draw; off: into a buffer
    if num_workers and num_workers > 1 and len(ids) > 1:
        # Chunks, not single images, are the tasks: each worker returns one [T, N, N] sum per chunk, so the
        # confusion matrices crossing the process boundary are few whatever the number of images.
        size = max(1, min(_CHUNK, math.ceil(len(ids) / num_workers)))
        chunks = [(args, ids[i:i + size]) for i in range(0, len(ids), size)]
        parts = track_parallel_progress(_chunk_confusion, chunks, num_workers, file=bar_file)
        conf = np.sum(parts, axis=0, dtype=np.int64)
    else:
        conf = np.zeros((len(thresholds), num_classes, num_classes), dtype=np.int64)
        for img_id in track_iter_progress(ids, file=bar_file):
            conf += _image_confusion(*args, img_id)
    if progress:
        sys.stderr.write('\n')
    result = summarize_sweep(conf, thresholds)
    result.update(confusion=conf, thresholds=thresholds, num_images=len(ids))
    return result


def _class_names(num_classes: int, class_names: Optional[Sequence[str]]) -> List[str]:
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f'{len(class_names)} class names given for {num_classes} classes')
    return list(class_names)


def format_sweep(summary: Dict, class_names: Optional[Sequence[str]] = None) -> str:
    """A text report of a sweep: best threshold and mIoU, the per-class IoU table there, and the curve."""
    iou = np.asarray(summary['per_class_iou'])
    names = _class_names(len(iou), class_names)
    table = PrettyTable()
    table.add_column('Class', names)
    table.add_column('IoU', ['nan' if np.isnan(v) else f'{v * 100:.2f}' for v in iou])
    curve = summary['curve']
    rows = ['  '.join(f't={t:.2f}: {m * 100:6.2f}' for t, m in curve[i:i + 6]) for i in range(0, len(curve), 6)]
    return (f'best threshold: {summary["best_threshold"]:.2f}  best mIoU: {summary["best_miou"] * 100:.2f}\n'
            f'per-class IoU at t={summary["best_threshold"]:.2f}:\n{table.get_string()}\n'
            'mIoU curve (threshold: mIoU):\n' + '\n'.join(rows))


def sweep_to_dict(summary: Dict, class_names: Optional[Sequence[str]] = None) -> Dict:
    """A JSON-ready dict of a sweep (IoUs in [0, 1]; NaN, for classes absent from gt and seeds, as None)."""
    iou = np.asarray(summary['per_class_iou'])
    names = _class_names(len(iou), class_names)

    def clean(v: float) -> Optional[float]:
        return None if math.isnan(v) else float(v)

    out = dict(
        best_threshold=float(summary['best_threshold']),
        best_miou=float(summary['best_miou']),
        per_class_iou={n: clean(v) for n, v in zip(names, iou.tolist())},
        curve=[[float(t), clean(m)] for t, m in summary['curve']])
    if 'num_images' in summary:
        out['num_images'] = int(summary['num_images'])
    return out


def dump_sweep_json(path: str, summary: Dict, class_names: Optional[Sequence[str]] = None) -> None:
    """Writes :func:`sweep_to_dict` to ``path`` as JSON, atomically."""
    text = json.dumps(sweep_to_dict(summary, class_names), indent=2)
    atomic_write(path, lambda f: f.write(text.encode('utf-8')))
