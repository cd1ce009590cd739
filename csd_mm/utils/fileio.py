"""Small file helpers: atomic writes (so an interrupted run never leaves a half-written file) and PNG masks."""
import os
import os.path as osp
import tempfile

import cv2
import mmcv
import numpy as np

__all__ = ['atomic_write_bytes', 'write_png', 'read_png']


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def write_png(path: str, array: np.ndarray) -> None:
    """Writes a single-channel uint8 (or BGR) array as a PNG, atomically."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f'{path}: PNG masks must be uint8, got {array.dtype}')
    ok, buf = cv2.imencode('.png', array)
    if not ok:
        raise IOError(f'{path}: PNG encoding failed')
    atomic_write_bytes(path, buf.tobytes())


def read_png(path: str) -> np.ndarray:
    """Reads a PNG mask unchanged (palette PNGs give their indices); names the file on failure."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: mask file not found')
    array = mmcv.imread(path, flag='unchanged', backend='pillow')
    if array is None:
        raise ValueError(f'{path}: not a readable image (corrupt file?)')
    if array.ndim != 2:
        raise ValueError(f'{path}: expected a single-channel mask, got shape {array.shape}')
    return array
