"""The source bank of CSD: prior localisation masks of the single-label (source-domain) images.

Stage 0 of CSD (Yang et al., BMVC 2023, Sec. 3.1): a baseline classifier trained without the CSD losses gives
a CAM for every single-label image; its one class map, max-normalised to [0, 1], becomes a foreground mask
``M_fg = cam >= tau_fg`` and a background mask ``M_bg = cam < tau_bg`` (IRN's confident-region thresholds
by default); pixels in between are "unsure" and belong to neither. Alternatively the masks come from a
folder of pseudo-mask PNGs: ``M_fg = (mask == c + 1)``, ``M_bg = (mask == 0)``.

On disk one single-channel PNG per source image encodes both masks: 1 = foreground, 0 = background,
255 = unsure (so mmseg's ``LoadAnnotations`` loads it and every geometric transform keeps it aligned with the
image; padding with 255 keeps padded pixels out of both masks). ``index.json`` lists the entries:
``{"img_id", "class", "mask"}`` plus the settings used; the bank is written once and reused.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from csd_mm.utils.cam_io import cam_path, load_cam
from csd_mm.utils.fileio import atomic_write_bytes, write_png

__all__ = ['FG_VALUE', 'BG_VALUE', 'UNSURE_VALUE', 'masks_from_cam', 'masks_from_pseudo_mask',
           'encode_masks', 'build_source_bank', 'load_source_bank', 'source_bank_complete']

FG_VALUE = 1
BG_VALUE = 0
UNSURE_VALUE = 255
INDEX_FILE = 'index.json'


def masks_from_cam(cam: np.ndarray, tau_fg: float = 0.30,
                   tau_bg: float = 0.05) -> Tuple[np.ndarray, np.ndarray]:
    """Turns one max-normalised class map into the fg / bg prior masks (CSD_SPEC section 2).

    Args:
        cam (np.ndarray): (H, W) CAM of the image's class, in [0, 1].
        tau_fg (float): Foreground threshold, ``cam >= tau_fg``. Defaults to 0.30.
        tau_bg (float): Background threshold, ``cam < tau_bg``. Defaults to 0.05.

    Returns:
        tuple[np.ndarray, np.ndarray]: Boolean (H, W) foreground and background masks (disjoint).
    """
    if tau_bg > tau_fg:
        raise ValueError(f'tau_bg ({tau_bg}) must not exceed tau_fg ({tau_fg})')
    cam = np.asarray(cam)
    if not np.isfinite(cam).all():
        raise ValueError('CAM holds NaN or inf values')
    return cam >= tau_fg, cam < tau_bg


def masks_from_pseudo_mask(mask: np.ndarray, class_index: int) -> Tuple[np.ndarray, np.ndarray]:
    """Fg / bg masks of foreground class ``class_index`` (0-based) from a pseudo mask (values 0..C, 255)."""
    mask = np.asarray(mask)
    return mask == class_index + 1, mask == 0


def encode_masks(fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Packs disjoint fg / bg masks into one uint8 map: 1 fg, 0 bg, 255 unsure."""
    if np.logical_and(fg, bg).any():
        raise ValueError('foreground and background masks overlap')
    out = np.full(fg.shape, UNSURE_VALUE, np.uint8)
    out[bg] = BG_VALUE
    out[fg] = FG_VALUE
    return out


def source_bank_complete(out_dir: str) -> bool:
    """True when ``out_dir`` holds a finished bank (its index is written last)."""
    return osp.isfile(osp.join(out_dir, INDEX_FILE))


def build_source_bank(out_dir: str,
                      ids: Sequence[str],
                      labels: np.ndarray,
                      cam_dir: Optional[str] = None,
                      pseudo_mask_dir: Optional[str] = None,
                      tau_fg: float = 0.30,
                      tau_bg: float = 0.05,
                      progress: bool = True) -> Dict:
    """Writes the source bank for the single-label images among ``ids``.

    Exactly one of ``cam_dir`` (stage-0 CAM files) and ``pseudo_mask_dir`` (PNG masks) is used. Masks already
    on disk are kept (a crashed run resumes); the index is written last and atomically, so an existing index
    means a complete bank, which is returned as it is.

    Args:
        out_dir (str): Bank folder (``masks/<img_id>.png`` and ``index.json``).
        ids (Sequence[str]): Image ids, aligned with ``labels``.
        labels (np.ndarray): (N, C) multi-hot image-level labels.
        cam_dir (str, optional): Folder of ``<img_id>.npz`` CAM files.
        pseudo_mask_dir (str, optional): Folder of ``<img_id>.png`` pseudo masks.
        tau_fg (float): Foreground threshold for CAMs. Defaults to 0.30.
        tau_bg (float): Background threshold for CAMs. Defaults to 0.05.
        progress (bool): Show an mmengine progress bar. Defaults to True.

    Returns:
        dict: The index (``entries`` and the settings).
    """
    if source_bank_complete(out_dir):
        return load_source_bank(out_dir)
    if (cam_dir is None) == (pseudo_mask_dir is None):
        raise ValueError('give exactly one of cam_dir and pseudo_mask_dir')
    labels = np.asarray(labels)
    if len(ids) != len(labels):
        raise ValueError(f'{len(ids)} ids but {len(labels)} label vectors')
    single = np.flatnonzero(labels.sum(1) == 1)
    mask_dir = osp.join(out_dir, 'masks')
    os.makedirs(mask_dir, exist_ok=True)
    entries: List[Dict] = []
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(single))
    for i in single:
        img_id, cls = ids[i], int(np.flatnonzero(labels[i])[0])
        rel = osp.join('masks', img_id + '.png')
        dst = osp.join(out_dir, rel)
        if not osp.exists(dst):
            if cam_dir is not None:
                src = cam_path(cam_dir, img_id)
                cam, keys = load_cam(src)
                if cls not in keys.tolist():
                    raise ValueError(f'{src}: CAM has classes {keys.tolist()} but the label says {cls}')
                fg, bg = masks_from_cam(cam[keys.tolist().index(cls)], tau_fg, tau_bg)
            else:
                src = osp.join(pseudo_mask_dir, img_id + '.png')
                from csd_mm.utils.fileio import read_png
                fg, bg = masks_from_pseudo_mask(read_png(src), cls)
            write_png(dst, encode_masks(fg, bg))
        entries.append(dict(img_id=img_id, **{'class': cls}, mask=rel))
        if bar is not None:
            bar.update()
    index = dict(entries=entries, prior='cam' if cam_dir is not None else 'pseudo_mask',
                 tau_fg=tau_fg, tau_bg=tau_bg, num_classes=int(labels.shape[1]))
    atomic_write_bytes(osp.join(out_dir, INDEX_FILE), json.dumps(index, indent=1).encode())
    return index


def load_source_bank(out_dir: str) -> Dict:
    """Reads a bank's index; a clear error when it is missing or malformed."""
    path = osp.join(out_dir, INDEX_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no source bank index (run stage 0 / the CAM hook first)')
    try:
        with open(path) as f:
            index = json.load(f)
        entries = index['entries']
    except (ValueError, KeyError) as e:
        raise ValueError(f'{path}: malformed source bank index ({e})') from e
    for e in entries:
        if not {'img_id', 'class', 'mask'} <= set(e):
            raise ValueError(f'{path}: entry {e} lacks img_id / class / mask')
    return index
