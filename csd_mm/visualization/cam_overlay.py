"""Drawing of CAMs for people: the image, one heatmap per class over it, and the seeds at a background score.

Used by ``tools/analysis/visualize_cams.py`` (CAM files on disk) and ``tools/test.py --show-dir`` (the CAMs a
test run wrote, with the best background score of its seed sweep).
"""
from typing import Optional, Sequence

import cv2
import numpy as np

from csd_mm.evaluation.functional import seed_from_cam

__all__ = ['draw_cam_row']


def _label(panel: np.ndarray, text: str) -> None:
    cv2.putText(panel, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)


def draw_cam_row(img: np.ndarray,
                 cam: np.ndarray,
                 keys: np.ndarray,
                 names: Sequence[str],
                 palette: np.ndarray,
                 threshold: Optional[float] = None) -> np.ndarray:
    """One row of panels (BGR uint8): the image, a JET heatmap over it per class, and (when ``threshold`` is
    given) the colour-coded seeds over it.

    Args:
        img (np.ndarray): The image, ``(H, W, 3)`` BGR uint8.
        cam (np.ndarray): CAMs ``(K, H, W)`` in [0, 1] (the CAM file format of :mod:`csd_mm.utils.cam_io`).
        keys (np.ndarray): The K 0-based foreground class ids of ``cam``.
        names (Sequence[str]): Class names with background first (mask value order).
        palette (np.ndarray): ``(N, 3)`` RGB colours by mask value.
        threshold (float, optional): Background score of the seeds; None draws no seed panel.

    Returns:
        np.ndarray: ``(H, W * (1 + K [+ 1]), 3)`` BGR uint8.

    Raises:
        ValueError: the image and the CAMs differ in size.
    """
    if img.shape[:2] != cam.shape[1:]:
        raise ValueError(f'image size {img.shape[:2]} differs from CAM size {cam.shape[1:]}')
    panels = [img]
    for c, key in zip(cam, keys):
        heat = cv2.applyColorMap(np.uint8(np.clip(c, 0, 1) * 255), cv2.COLORMAP_JET)
        panel = cv2.addWeighted(img, 0.5, heat, 0.5, 0)
        _label(panel, names[key + 1] if key + 1 < len(names) else f'class {key}')
        panels.append(panel)
    if threshold is not None:
        palette = np.asarray(palette, np.uint8)
        seed = seed_from_cam(cam, keys, threshold)
        colour = palette[seed % len(palette)][..., ::-1].astype(np.uint8)  # palette is RGB
        panel = cv2.addWeighted(img, 0.4, colour, 0.6, 0)
        _label(panel, f'seeds t={threshold:.2f}')
        panels.append(panel)
    return np.concatenate(panels, axis=1)
