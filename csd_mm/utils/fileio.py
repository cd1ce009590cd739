"""Small file helpers: atomic writes (so an interrupted run never leaves a half-written file) and PNG masks."""
import errno
import os
import os.path as osp
import re
import socket
import tempfile
from typing import Any, Callable, List

import cv2
import mmcv
import numpy as np

__all__ = ['StaleOutputError', 'atomic_write', 'atomic_write_bytes', 'write_png', 'read_png', 'read_image',
           'raise_if_unreadable_image', 'current_umask', 'new_file_mode', 'remove_stale_temp_files']


class StaleOutputError(ValueError):
    """An output folder holds results made otherwise (other weights, settings or inputs) than the asking run's.

    Raised instead of reusing or mixing them (CAM folders, source banks, confident-label caches); the message
    names the folder and what to delete. The tools print it as one ``error:`` line, not a traceback.
    """


#: ``.<file name>~<host>~<pid>~<random><suffix>``: the writer's host and pid in the temporary file's name let
#: :func:`remove_stale_temp_files` tell the leftovers of a killed writer from a file being written right now.
_TEMP_NAME = re.compile(r'^\..*~(?P<host>[^~]*)~(?P<pid>\d+)~[^~]*\.tmp$')


def current_umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status`` on Linux >= 4.7).

    Elsewhere it falls back to setting and restoring it with :func:`os.umask`, which another thread creating a
    file in between could observe; the fallback is only taken where ``/proc`` does not report it.
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(umask: int) -> int:
    """The permission bits ``open(path, 'w')`` gives a new file: ``0o666 & ~umask`` (0o644 for umask 022)."""
    return 0o666 & ~umask


def _host() -> str:
    return socket.gethostname().replace('~', '-')


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temp_files(folder: str) -> List[str]:
    """Deletes the temporary files that killed writers of :func:`atomic_write` left in ``folder``.

    Only files whose name records this host and a process id that no longer runs are removed, so files being
    written by live processes (other ranks, other tools) are kept. Leftovers are harmless otherwise: every
    reader looks for final names only.

    Args:
        folder (str): The folder to clean (nothing happens when it does not exist). Only ``atomic_write``'s
            default ``.tmp`` temporary files are recognised.

    Returns:
        list[str]: The removed paths.
    """
    if not osp.isdir(folder):
        return []
    host, removed = _host(), []
    for name in os.listdir(folder):
        match = _TEMP_NAME.match(name)
        if match is None or match['host'] != host:
            continue
        if _pid_alive(int(match['pid'])):
            continue
        path = osp.join(folder, name)
        try:
            os.remove(path)
            removed.append(path)
        except OSError as e:  # another process cleaned it first
            if e.errno != errno.ENOENT:
                raise
    return removed


def atomic_write(path: str, write: Callable[[Any], None]) -> None:
    """Writes a file atomically: ``write(fileobj)`` fills a temporary file in the same folder, which then
    replaces ``path`` with :func:`os.replace`, so a crash never leaves a half-written file behind.

    The file gets the permission bits a plain ``open()`` would give a new file (``0o666 & ~umask``), not the
    0o600 of :func:`tempfile.mkstemp`, so the group / other users can read the outputs as the umask allows. The
    temporary file's name records the host and process id (see :func:`remove_stale_temp_files`).

    Args:
        path (str): The final path. Its folder is created if needed.
        write (Callable): Called with a binary file object opened for writing.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f'.{osp.basename(path)}~{_host()}~{os.getpid()}~', suffix='.tmp')
    try:
        os.fchmod(fd, new_file_mode(current_umask()))
        with os.fdopen(fd, 'wb') as f:
            write(f)
            # on disk before the rename: after a power loss the name never shows an empty or partial file,
            # which a rerun would take as finished
            f.flush()
            os.fsync(f.fileno())
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
