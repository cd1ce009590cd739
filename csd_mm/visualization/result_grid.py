"""Grids of results read from disk: for each image, one row per run (e.g. baseline and CSD) with the image, its
CAMs, the seeds, the pseudo mask and the ground truth (:func:`~csd_mm.visualization.cam_overlay.draw_result_row`).
"""
import json
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import mmcv
import numpy as np

from csd_mm.utils.cam_io import cam_path, load_cam
from csd_mm.utils.fileio import read_png
from .cam_overlay import draw_result_row, stack_rows

__all__ = ['class_meta', 'voc_colormap', 'multi_label_ids', 'draw_result_grid']


def class_meta(data_root: Optional[str] = None,
               classes: Optional[Sequence[str]] = None) -> Tuple[List[str], np.ndarray]:
    """Class names (background first) and ``(N, 3)`` RGB palette: ``classes``, else the data root's ``meta.json``
    (as the toy dataset writes), else PASCAL VOC's; the palette from ``meta.json`` or VOC's, extended by VOC's
    colour map (:func:`voc_colormap`) when there are more classes than colours.
    """
    from mmseg.datasets import PascalVOCDataset
    names = list(PascalVOCDataset.METAINFO['classes'])
    palette = [list(c) for c in PascalVOCDataset.METAINFO['palette']]
    meta = osp.join(data_root, 'meta.json') if data_root else None
    if meta and osp.isfile(meta):
        with open(meta) as f:
            content = json.load(f)
        names = list(content.get('classes', names))
        palette = content.get('palette', palette)
    if classes:
        names = list(classes)
    if len(palette) < len(names):  # e.g. COCO's 81 classes: the colours given, then VOC's colour map
        palette = [list(c) for c in palette] + voc_colormap(len(names))[len(palette):].tolist()
    return names, np.asarray(palette, np.uint8)


def voc_colormap(num: int) -> np.ndarray:
    """PASCAL VOC's colour map for ``num`` (<= 256) labels: label ``i``'s bits 0/1/2, 3/4/5, ... spread over the
    high bits of R/G/B (its first 21 colours are VOC's palette); ``(num, 3)`` uint8 RGB."""
    if not 0 <= num <= 256:
        raise ValueError(f'voc_colormap: num must be in [0, 256], got {num}')
    cmap = np.zeros((num, 3), np.uint8)
    for label in range(num):
        value, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        cmap[label] = (r, g, b)
    return cmap


def multi_label_ids(ids: Sequence[str], labels: Mapping[str, np.ndarray], num: int) -> List[str]:
    """The first ``num`` ids of ``ids`` (in their order) whose image-level label has two classes or more.

    Raises:
        KeyError: an id has no label (names the id).
    """
    chosen = []
    for img_id in ids:
        if img_id not in labels:
            raise KeyError(f'image {img_id} has no image-level label')
        if np.asarray(labels[img_id]).sum() >= 2:
            chosen.append(img_id)
            if len(chosen) == num:
                break
    return chosen


def draw_result_grid(ids: Sequence[str],
                     runs: Sequence[Dict],
                     img_dir: str,
                     names: Sequence[str],
                     palette: np.ndarray,
                     gt_dir: Optional[str] = None,
                     img_suffix: str = '.jpg',
                     scale: int = 1) -> np.ndarray:
    """One grid (RGB uint8): for each image id, one row per run.

    Args:
        ids (Sequence[str]): Image ids, top to bottom.
        runs (Sequence[dict]): One dict per row of an image: ``name`` (its title), ``cam_dir`` (CAM files,
            ``<img_id>.npz``), optional ``threshold`` (background score of the seeds; no seed panel without it)
            and ``mask_dir`` (pseudo masks, ``<img_id>.png``).
        img_dir (str): Folder of the images, ``<img_id><img_suffix>``.
        names (Sequence[str]): Class names with background first.
        palette (np.ndarray): ``(N, 3)`` RGB colours by mask value.
        gt_dir (str, optional): Ground-truth masks ``<img_id>.png``; an image without one gets no GT panel.
        img_suffix (str): Defaults to '.jpg'.
        scale (int): Integer enlargement of every panel. Defaults to 1.

    Raises:
        FileNotFoundError / ValueError: a file is missing or unreadable, or sizes differ (names the file).
    """
    rows = []
    for img_id in ids:
        img_file = osp.join(img_dir, img_id + img_suffix)
        img = mmcv.imread(img_file, channel_order='rgb')  # raises FileNotFoundError naming the file
        gt_file = osp.join(gt_dir, f'{img_id}.png') if gt_dir else None
        gt = read_png(gt_file) if gt_file and osp.isfile(gt_file) else None
        for i, run in enumerate(runs):
            cam_file = cam_path(run['cam_dir'], img_id)
            cam, keys = load_cam(cam_file)
            mask_file = osp.join(run['mask_dir'], f'{img_id}.png') if run.get('mask_dir') else None
            mask = read_png(mask_file) if mask_file else None
            title = f'{img_id}\n{run["name"]}' if i == 0 else run['name']
            try:
                rows.append(draw_result_row(img, cam, keys, names, palette, run.get('threshold'), mask, gt, title,
                                            scale))
            except ValueError as e:
                raise ValueError(f'{img_file} with {cam_file}: {e}') from e
    return stack_rows(rows, gap=2 * scale)
