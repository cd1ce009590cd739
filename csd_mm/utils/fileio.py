"""Small file helpers: atomic writes (so an interrupted run never leaves a half-written file) and PNG masks."""
import os
import os.path as osp
import tempfile
from typing import Any, Callable

import cv2
import mmcv
import numpy as np

__all__ = ['atomic_write', 'atomic_write_bytes', 'write_png', 'read_png']


def atomic_write(path: str, write: Callable[[Any], None], suffix: str = '.tmp') -> None:
    """Writes a file atomically: ``write(fileobj)`` fills a temporary file in the same folder, which then
    replaces ``path`` with :func:`os.replace`, so a crash never leaves a half-written file behind.

    Args:
        path (str): The final path. Its folder is created if needed.
        write (Callable): Called with a binary file object opened for writing.
        suffix (str): Suffix of the temporary file. Defaults to '.tmp'.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path) + '.', suffix=suffix)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(data))


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
    """Reads a single-channel mask PNG as mmseg's ``LoadAnnotations`` does (pillow, unchanged: palette PNGs give
    their indices, not colours); errors name the file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'mask {path} does not exist')
    try:
        array = mmcv.imread(path, flag='unchanged', backend='pillow')
    except Exception as e:  # pillow raises several types for unreadable files
        raise ValueError(f'mask {path} cannot be read: {e}') from e
    if array is None or array.ndim != 2:
        raise ValueError(f'mask {path} must be a single-channel image, got shape '
                         f'{None if array is None else array.shape}')
    return array
