"""Drawing of CAMs and masks for people: the image, one heatmap per class over it, the seeds at a background
score, a pseudo mask and the ground truth, side by side.

The masks (seeds, pseudo masks, ground truth) are drawn by mmseg's ``SegLocalVisualizer`` with the dataset's
palette, and the panel titles with its ``draw_texts``; only the heat-map colouring is ours
(:func:`cam_heatmap`): mmengine's ``Visualizer.draw_featmap`` rescales every map to its own min / max, which
would show a faint CAM as bright as a confident one and hide what a baseline vs CSD comparison is about, so the
CAMs keep their absolute [0, 1] scale here.

Used by ``tools/analysis/visualize.py`` (CAM / mask files on disk, grids of several runs),
``tools/run_pipeline.py`` (a baseline vs CSD figure at the end) and ``tools/test.py --show-dir`` (the CAMs a test
run wrote, with the best background score of its seed sweep).
"""
from typing import List, Optional, Sequence

import cv2
import numpy as np

from csd_mm.evaluation.functional import seed_from_cam

__all__ = ['cam_heatmap', 'blend', 'stack_rows', 'draw_result_row', 'draw_cam_row']


def cam_heatmap(cam: np.ndarray) -> np.ndarray:
    """JET colours of one CAM on the absolute scale: 0 -> dark blue, 1 -> dark red (values clipped to [0, 1]).

    Args:
        cam (np.ndarray): ``(H, W)`` float scores.

    Returns:
        np.ndarray: ``(H, W, 3)`` RGB uint8.
    """
    levels = np.round(np.clip(cam, 0.0, 1.0) * 255).astype(np.uint8)
    return cv2.applyColorMap(levels, cv2.COLORMAP_JET)[..., ::-1].copy()  # OpenCV's maps are BGR


def blend(img: np.ndarray, overlay: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * img + alpha * overlay``, rounded to uint8."""
    mixed = (1.0 - alpha) * img.astype(np.float32) + alpha * overlay.astype(np.float32)
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def stack_rows(rows: Sequence[np.ndarray], gap: int = 2, fill: int = 255) -> np.ndarray:
    """Stacks rows of panels of different widths: each is padded on the right to the widest, ``gap`` pixels of
    ``fill`` between two rows.

    Args:
        rows (Sequence[np.ndarray]): ``(H_i, W_i, 3)`` uint8 images.
        gap (int): Pixels between two rows. Defaults to 2.
        fill (int): Value of the padding. Defaults to 255 (white).

    Returns:
        np.ndarray: ``(sum H_i + gap * (n - 1), max W_i, 3)`` uint8.
    """
    if not rows:
        raise ValueError('stack_rows needs at least one row')
    width = max(r.shape[1] for r in rows)
    out: List[np.ndarray] = []
    for i, row in enumerate(rows):
        if i:
            out.append(np.full((gap, width, 3), fill, np.uint8))
        pad = np.full((row.shape[0], width - row.shape[1], 3), fill, np.uint8)
        out.append(np.concatenate([row, pad], axis=1))
    return np.concatenate(out, axis=0)


_VISUALIZER: dict = {}  # the last visualizer by (names, palette): a matplotlib figure per row would be slow


def _visualizer(names: Sequence[str], palette: np.ndarray):
    key = (tuple(names), np.asarray(palette, np.uint8)[:len(names)].tobytes())
    if key not in _VISUALIZER:
        _VISUALIZER.clear()
        _VISUALIZER[key] = _new_visualizer(names, palette)
    return _VISUALIZER[key]


def _new_visualizer(names: Sequence[str], palette: np.ndarray):
    from mmseg.visualization import SegLocalVisualizer
    # alpha: the share of the mask colour over the image (mmseg's default, 0.8, hides the image)
    visualizer = SegLocalVisualizer(name='csd_mm_cam_overlay', alpha=0.6)
    # by keyword, after construction: mmseg 1.2.2's __init__ passes (palette, classes) to set_dataset_meta's
    # (classes, palette) positions, swapping them
    visualizer.set_dataset_meta(classes=list(names),
                                palette=[tuple(int(v) for v in c) for c in np.asarray(palette)[:len(names)]])
    return visualizer


def _titled(visualizer, panel: np.ndarray, title: str) -> np.ndarray:
    visualizer.set_image(panel)
    visualizer.draw_texts(title, np.array([2, 1]), colors='white', font_sizes=max(7, panel.shape[0] // 12),
                          vertical_alignments='top',
                          bboxes=dict(facecolor='black', alpha=0.6, pad=1, edgecolor='none'))
    return visualizer.get_image()


def _mask_panel(visualizer, img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import torch
    from mmengine.structures import PixelData
    # the drawing step of SegLocalVisualizer.add_datasample; called directly because add_datasample leaves its
    # result only on the matplotlib canvas, whose read-back blurs the border pixels of small images
    sem_seg = PixelData(data=torch.from_numpy(mask.astype(np.int64)[None]))
    meta = visualizer.dataset_meta
    return visualizer._draw_sem_seg(img, sem_seg, meta['classes'], meta['palette'], with_labels=False)


def draw_result_row(img: np.ndarray,
                    cam: np.ndarray,
                    keys: np.ndarray,
                    names: Sequence[str],
                    palette: np.ndarray,
                    threshold: Optional[float] = None,
                    pseudo_mask: Optional[np.ndarray] = None,
                    gt: Optional[np.ndarray] = None,
                    title: Optional[str] = None,
                    scale: int = 1) -> np.ndarray:
    """One row of panels (RGB uint8): the image, a heatmap per class over it, and optionally the seeds at
    ``threshold``, a pseudo mask and the ground truth over it, each titled.

    Args:
        img (np.ndarray): The image, ``(H, W, 3)`` RGB uint8.
        cam (np.ndarray): CAMs ``(K, H, W)`` in [0, 1] (the CAM file format of :mod:`csd_mm.utils.cam_io`).
        keys (np.ndarray): The K 0-based foreground class ids of ``cam``.
        names (Sequence[str]): Class names with background first (mask value order).
        palette (np.ndarray): ``(N, 3)`` RGB colours by mask value, ``N >= len(names)``.
        threshold (float, optional): Background score of the seeds; None draws no seed panel.
        pseudo_mask (np.ndarray, optional): ``(H, W)`` mask values (255: ignored, not drawn).
        gt (np.ndarray, optional): ``(H, W)`` ground truth, as ``pseudo_mask``.
        title (str, optional): Title of the image panel (e.g. the run's name).
        scale (int): Integer enlargement of every panel (tiny images get readable titles). Defaults to 1.

    Returns:
        np.ndarray: ``(scale * H, scale * W * P, 3)`` RGB uint8, P panels.

    Raises:
        ValueError: the image, the CAMs or a mask differ in size.
    """
    size = img.shape[:2]
    for what, array in (('CAM', cam.shape[1:]), ('pseudo mask', None if pseudo_mask is None else pseudo_mask.shape),
                        ('ground truth', None if gt is None else gt.shape)):
        if array is not None and tuple(array) != size:
            raise ValueError(f'image size {size} differs from {what} size {tuple(array)}')
    big = (size[1] * scale, size[0] * scale)
    img = cv2.resize(img, big, interpolation=cv2.INTER_NEAREST) if scale != 1 else img

    def enlarge_mask(mask: np.ndarray) -> np.ndarray:
        return cv2.resize(mask.astype(np.uint8), big, interpolation=cv2.INTER_NEAREST) if scale != 1 else mask

    visualizer = _visualizer(names, palette)
    panels = [_titled(visualizer, img, title) if title else img]
    for c, key in zip(cam, keys):
        c = cv2.resize(c.astype(np.float32), big, interpolation=cv2.INTER_LINEAR) if scale != 1 else c
        name = names[key + 1] if key + 1 < len(names) else f'class {key}'
        panels.append(_titled(visualizer, blend(img, cam_heatmap(c), 0.5), name))
    if threshold is not None:
        seeds = enlarge_mask(seed_from_cam(cam, keys, threshold))
        panels.append(_titled(visualizer, _mask_panel(visualizer, img, seeds), f'seeds t={threshold:.2f}'))
    for mask, name in ((pseudo_mask, 'pseudo mask'), (gt, 'ground truth')):
        if mask is not None:
            panels.append(_titled(visualizer, _mask_panel(visualizer, img, enlarge_mask(mask)), name))
    return np.concatenate(panels, axis=1)


def draw_cam_row(img: np.ndarray,
                 cam: np.ndarray,
                 keys: np.ndarray,
                 names: Sequence[str],
                 palette: np.ndarray,
                 threshold: Optional[float] = None) -> np.ndarray:
    """:func:`draw_result_row` on a BGR image (as mmcv reads it), returning BGR: the image, a heatmap per class,
    and (when ``threshold`` is given) the colour-coded seeds.

    Args:
        img (np.ndarray): The image, ``(H, W, 3)`` BGR uint8.
        cam (np.ndarray): CAMs ``(K, H, W)`` in [0, 1].
        keys (np.ndarray): The K 0-based foreground class ids of ``cam``.
        names (Sequence[str]): Class names with background first (mask value order).
        palette (np.ndarray): ``(N, 3)`` RGB colours by mask value.
        threshold (float, optional): Background score of the seeds; None draws no seed panel.

    Returns:
        np.ndarray: ``(H, W * (1 + K [+ 1]), 3)`` BGR uint8.

    Raises:
        ValueError: the image and the CAMs differ in size.
    """
    row = draw_result_row(np.ascontiguousarray(img[..., ::-1]), cam, keys, names, palette, threshold)
    return np.ascontiguousarray(row[..., ::-1])
