"""Small file helpers: atomic writes (so an interrupted run never leaves a half-written file) and PNG masks."""
import os
import os.path as osp
import tempfile
from typing import Any, Callable

import cv2
import mmcv
import numpy as np

__all__ = ['atomic_write', 'atomic_write_bytes', 'write_png', 'read_png', 'read_image', 'raise_if_unreadable_image']


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


def read_image(path: str, channel_order: str = 'bgr') -> np.ndarray:
    """Reads a colour image with mmcv; a missing, empty, truncated or non-image file is an error naming it.

    (mmcv's cv2 backend returns None for an undecodable file and raises a bare ``cv2.error`` for an empty one.)

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be decoded.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'image {path} does not exist')
    try:
        img = mmcv.imread(path, channel_order=channel_order)
    except Exception as e:  # cv2.error for empty files, others from the decoders
        raise ValueError(f'image {path} cannot be decoded (empty, truncated or not an image file): '
                         f'{type(e).__name__}: {e}') from e
    if img is None:
        raise ValueError(f'image {path} cannot be decoded (empty, truncated or not an image file)')
    return img


def raise_if_unreadable_image(path: str, error: BaseException) -> None:
    """Called when a data pipeline failed on the sample of image ``path``: raises a ValueError naming the image
    (chained to ``error``) when the image itself cannot be read; returns otherwise, so the caller re-raises
    ``error`` unchanged (the failure was elsewhere).

    mmcv's ``LoadImageFromFile`` stops on an empty file with a bare ``cv2.error`` that names no file.
    """
    try:
        read_image(path)
    except (FileNotFoundError, ValueError) as e:
        raise type(e)(f'{e} (while loading a training / test sample)') from error
