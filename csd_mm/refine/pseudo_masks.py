"""Pseudo-mask export (CAM files -> refined ``<id>.png`` masks) and mask mIoU.

The last step before training the segmentation network in the WSSS pipeline of Yang et al., "Cross-domain
Semantic Decoupling for Weakly-Supervised Semantic Segmentation" (BMVC 2023), IRN (Ahn et al., CVPR 2019) and
MCTformer (Xu et al., CVPR 2022): every image's CAMs are refined (dense CRF, PSA random walk or none) into a
single-channel ``uint8`` PNG with values ``0 .. C`` and 255 (ignore). Files are written atomically, so an
existing file is complete and reruns skip it. The mask mIoU uses mmseg's ``IoUMetric`` arithmetic.
"""
import io
import os
import os.path as osp
import sys
from functools import partial
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.utils import track_parallel_progress, track_progress
from mmseg.evaluation.metrics import IoUMetric

from ..utils.cam_io import cam_path, check_cam_folder, load_cam
from ..utils.fileio import read_image, read_png, remove_stale_temp_files, write_png
from ..utils.paths import check_image_id
from ..utils.process import die_with_parent
from .refiners.builder import RefinerType, build_refiner

__all__ = ['refine_one', 'export_pseudo_masks', 'mask_miou']


def _find_image(img_dir: str, img_id: str, img_suffix: str) -> str:
    path = osp.join(img_dir, img_id + img_suffix)
    if not osp.isfile(path):
        raise FileNotFoundError(f'image of {img_id!r} not found: {path}')
    return path


def refine_one(refiner: Callable, cam_dir: str, img_dir: str, img_id: str, out_dir: str,
               img_suffix: str = '.jpg') -> bool:
    """Refines one image and writes ``<out_dir>/<img_id>.png``; returns False if it already existed."""
    out = osp.join(out_dir, check_image_id(img_id) + '.png')
    if osp.isfile(out):
        return False
    cpath = cam_path(cam_dir, img_id)
    cam, keys = load_cam(cpath)
    ipath = _find_image(img_dir, img_id, img_suffix)
    img = read_image(ipath, channel_order='rgb')  # a corrupt / empty file: an error naming it
    if cam.shape[1:] != img.shape[:2]:
        raise ValueError(f'CAM file {cpath} has size {cam.shape[1:]} but image {ipath} has {img.shape[:2]}')
    mask = np.asarray(refiner(img, cam, keys))
    if mask.shape != img.shape[:2] or mask.dtype != np.uint8:
        raise ValueError(f'refiner {refiner!r} returned {mask.dtype} {mask.shape} for {img_id!r}; expected '
                         f'uint8 {img.shape[:2]}')
    write_png(out, mask)
    return True


_WORKER: Dict[str, Any] = {}


def _init_worker(refiner: Callable, cam_dir: str, img_dir: str, out_dir: str, img_suffix: str,
                 parent: int) -> None:
    """Pool initializer: one torch thread per worker; the refiner and folders are passed once, not per task.

    A worker dies with the exporting process ``parent`` (killed or not), so no orphan keeps writing after a
    crash."""
    die_with_parent(parent=parent)
    torch.set_num_threads(1)
    _WORKER.update(refiner=refiner, cam_dir=cam_dir, img_dir=img_dir, out_dir=out_dir, img_suffix=img_suffix)


def _work(img_id: str) -> bool:
    w = _WORKER
    return refine_one(w['refiner'], w['cam_dir'], w['img_dir'], img_id, w['out_dir'], w['img_suffix'])


def export_pseudo_masks(cam_dir: str,
                        img_dir: str,
                        ids: Sequence[str],
                        out_dir: str,
                        refiner: RefinerType,
                        num_workers: int = 0,
                        progress: bool = True,
                        img_suffix: str = '.jpg',
                        num_fg_classes: Optional[int] = None) -> Dict[str, int]:
    """Writes ``<out_dir>/<id>.png`` for every id (atomically), skipping files that exist.

    A run that was killed is resumed by calling it again: finished masks are skipped, the temporary files the
    killed writers left are removed. Before anything is written, the inputs are checked
    (:func:`~csd_mm.utils.cam_io.check_cam_folder`): every id is a plain file name and has a CAM file whose class
    ids lie in ``0..num_fg_classes-1``, and an image.

    The images are processed with mmengine's ``track_progress`` (in this process) or ``track_parallel_progress``
    (a ``multiprocessing`` pool of ``num_workers`` processes with one torch thread each; completion order).

    Args:
        cam_dir (str): Folder of ``<id>.npz`` CAM files (:mod:`csd_mm.utils.cam_io`).
        img_dir (str): Folder of ``<id><img_suffix>`` images.
        ids (Sequence[str]): Image ids.
        out_dir (str): Output folder (created).
        refiner (dict | callable): ``(img RGB uint8 (H, W, 3), cam (K, H, W), keys [K]) -> uint8 (H, W)``, or
            its config (e.g. ``dict(type=DenseCRFRefiner)``), built with :data:`csd_mm.registry.REFINERS`.
        num_workers (int): Worker processes (0: in this process). Defaults to 0.
        progress (bool): Show a progress bar on stdout. Defaults to True.
        img_suffix (str): Image file suffix. Defaults to '.jpg'.
        num_fg_classes (int, optional): C, the dataset's foreground classes: CAM files with other class ids
            (another dataset's) are refused. None: not checked.

    Returns:
        dict: ``written`` and ``skipped`` counts.

    Raises:
        FileNotFoundError: A CAM file or an image of ``ids`` is missing (checked before any file is written).
        ValueError: An id is not a plain file name, a CAM file holds class ids outside the classes, or (while
            writing) an image cannot be decoded or has another size than its CAM.
    """
    ids = [str(i) for i in ids]
    todo = [i for i in ids if not osp.isfile(osp.join(out_dir, check_image_id(i, 'the ids') + '.png'))]
    check_cam_folder(cam_dir, todo, num_fg_classes)
    missing = [osp.join(img_dir, i + img_suffix) for i in todo if not osp.isfile(osp.join(img_dir, i + img_suffix))]
    if missing:
        raise FileNotFoundError(f'{len(missing)} of {len(todo)} images to refine are missing in {img_dir} (CAMs of '
                                f'another dataset?): {", ".join(missing[:5])}{" ..." if len(missing) > 5 else ""}')
    refiner = build_refiner(refiner)
    os.makedirs(out_dir, exist_ok=True)
    remove_stale_temp_files(out_dir)  # the temporary files of a killed previous export
    if not todo:
        return dict(written=0, skipped=len(ids))
    bar_file = sys.stdout if progress else io.StringIO()  # mmengine's bars always draw; off: into a buffer
    if num_workers and num_workers > 0 and len(todo) > 1:
        done = track_parallel_progress(_work, todo, num_workers, initializer=_init_worker,
                                       initargs=(refiner, cam_dir, img_dir, out_dir, img_suffix, os.getpid()),
                                       keep_order=False, file=bar_file)
    else:
        done = track_progress(partial(refine_one, refiner, cam_dir, img_dir, out_dir=out_dir,
                                      img_suffix=img_suffix), todo, file=bar_file)
    written = sum(int(d) for d in done)
    return dict(written=written, skipped=len(ids) - written)


def mask_miou(pred_dir: str,
              gt_dir: str,
              ids: Sequence[str],
              num_classes: int,
              ignore_index: int = 255) -> Dict[str, Any]:
    """mIoU of ``<pred_dir>/<id>.png`` against ``<gt_dir>/<id>.png`` with mmseg's ``IoUMetric`` functions.

    Areas are accumulated over all images (``IoUMetric.intersect_and_union``) and turned into metrics by
    ``IoUMetric.total_area_to_metrics``. Ground-truth ``ignore_index`` pixels are not counted; predicted
    values outside ``0 .. num_classes - 1`` (e.g. 255) count as misses.

    Returns:
        dict: ``mIoU`` (float, mean over classes with a non-empty union, as mmseg), ``IoU`` (float64
        ``[num_classes]``, NaN where the union is empty), ``aAcc`` (float) and the summed ``area_*`` arrays.
    """
    totals = [torch.zeros(num_classes, dtype=torch.float64) for _ in range(4)]
    for img_id in ids:
        pred_path = osp.join(pred_dir, f'{img_id}.png')
        gt_path = osp.join(gt_dir, f'{img_id}.png')
        pred = read_png(pred_path)
        gt = read_png(gt_path)
        if pred.shape != gt.shape:
            raise ValueError(f'{pred_path} has shape {pred.shape} but {gt_path} has {gt.shape}')
        areas = IoUMetric.intersect_and_union(
            torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(gt.astype(np.int64)), num_classes,
            ignore_index)
        for total, area in zip(totals, areas):
            total += area.double()
    metrics = IoUMetric.total_area_to_metrics(*totals, ['mIoU'])  # takes torch tensors, returns numpy
    inter, union, pred_area, label_area = (t.numpy() for t in totals)
    iou = np.asarray(metrics['IoU'], dtype=np.float64)
    return dict(mIoU=float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float('nan'), IoU=iou,
                aAcc=float(metrics['aAcc']), area_intersect=inter, area_union=union, area_pred=pred_area,
                area_label=label_area)
