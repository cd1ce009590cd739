"""The CAM file format: one ``<img_id>.npz`` NumPy archive per image.

Each file holds ``cam`` (``float16``, shape ``(K, H, W)``: the image's K classes at the original image size,
normalised to [0, 1]: max-normalised as IRN, min-max as MCTformer) and ``keys`` (``int64``, shape ``[K]``: the
0-based foreground class ids, strictly ascending, so mask value ``keys + 1``). This replaces IRN's pickled
``.npy`` dict (Ahn et al., CVPR 2019): the archive keeps the keys beside the maps and is read with
``allow_pickle=False``, so loading a CAM file cannot run code. Files are written atomically (a temporary file in the same folder, then :func:`os.replace`), so a
file that exists is complete and reruns can skip it (:func:`missing_ids`).

A CAM folder also records which weights wrote it: ``.cams_of.json`` holds ``fingerprint``
(:func:`~csd_mm.utils.checkpoint.weights_fingerprint`), ``checkpoint`` and ``iteration`` (null when unknown). A
writer records a new (or empty) folder (:func:`record_new_cam_folder`) and refuses to add to a folder of other
weights (:func:`check_cam_record`), so skipping existing files never keeps another model's CAMs. A folder
written before these records existed gets one from a run that rewrote all of its files
(:func:`record_rewritten_cam_folder`, ``tools/test.py``).
"""
import collections
import json
import logging
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from .fileio import StaleOutputError, atomic_write, atomic_write_bytes
from .paths import check_image_id

__all__ = ['CAM_SUFFIX', 'CAMFileWriter', 'save_cam', 'load_cam', 'load_cam_keys', 'cam_path', 'missing_ids',
           'is_complete', 'check_cam_folder', 'CAM_RECORD_FILE', 'read_cam_record', 'record_new_cam_folder',
           'check_cam_record', 'holds_cam_files', 'record_rewritten_cam_folder']

CAM_SUFFIX = '.npz'
CAM_RECORD_FILE = '.cams_of.json'  # hidden: listings of ``*.npz`` and of image ids never meet it


def _to_numpy(x: Any) -> np.ndarray:
    """Returns ``x`` as a numpy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(x, 'detach') and hasattr(x, 'cpu'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_cam(cam: np.ndarray, keys: np.ndarray, where: str) -> None:
    """Raises ValueError (naming ``where``) unless ``cam``/``keys`` follow the CAM file contract."""
    if cam.ndim != 3:
        raise ValueError(f'{where}: cam must have shape (K, H, W), got shape {cam.shape}')
    if keys.ndim != 1:
        raise ValueError(f'{where}: keys must have shape [K], got shape {keys.shape}')
    if cam.shape[0] != keys.shape[0]:
        raise ValueError(f'{where}: cam has {cam.shape[0]} class maps but keys has {keys.shape[0]} entries')
    if not np.issubdtype(cam.dtype, np.floating):
        raise ValueError(f'{where}: cam must be a floating-point array, got dtype {cam.dtype}')
    if keys.size and not np.issubdtype(keys.dtype, np.integer):
        raise ValueError(f'{where}: keys must be integers, got dtype {keys.dtype}')
    if keys.size and (keys.min() < 0 or np.any(np.diff(keys) <= 0)):
        raise ValueError(f'{where}: keys must be non-negative and strictly ascending, got {keys.tolist()}')
    if not np.all(np.isfinite(cam)):
        raise ValueError(f'{where}: cam contains NaN or inf values')


def cam_path(cam_dir: str, img_id: str) -> str:
    """Returns the path of the CAM file of ``img_id`` in ``cam_dir`` (``<cam_dir>/<img_id>.npz``)."""
    return os.path.join(cam_dir, f'{img_id}{CAM_SUFFIX}')


def save_cam(path: str, cam: Any, keys: Any) -> str:
    """Saves one image's CAMs atomically as a ``.npz`` archive (``cam`` float16, ``keys`` int64).

    Args:
        path (str): Target file; ``.npz`` is appended when missing (as :func:`numpy.savez` would).
        cam (array-like): ``(K, H, W)`` class activation maps (numpy array or torch tensor); K may be 0.
        keys (array-like): ``[K]`` 0-based foreground class ids, strictly ascending.

    Returns:
        str: The path actually written.

    Raises:
        ValueError: If the shapes do not match, the keys are not ascending non-negative integers or the
            maps are not finite (also after the cast to float16).
    """
    path = os.fspath(path)
    if not path.endswith(CAM_SUFFIX):
        path += CAM_SUFFIX
    cam = _to_numpy(cam)
    keys = _to_numpy(keys)
    if keys.size == 0 and keys.ndim == 1:
        keys = keys.astype(np.int64)  # an empty list becomes float64 in numpy
    _check_cam(cam, keys, f'CAM file {path}')
    with np.errstate(over='ignore'):
        cam16 = cam.astype(np.float16)
    if not np.all(np.isfinite(cam16)):
        raise ValueError(f'CAM file {path}: cam values overflow float16 (max |value| is 65504)')
    keys64 = keys.astype(np.int64)
    atomic_write(path, lambda f: np.savez(f, cam=cam16, keys=keys64))
    return path


class CAMFileWriter:
    """Saves the CAMs of a model's outputs with :func:`save_cam` on one background thread.

    The copy off the accelerator, the float16 cast, the checks and the file write of a batch then run while the
    next batches go through the network (``benchmarks/bench_cam_generation.py`` measures the difference). At most
    ``max_pending`` batches wait: :meth:`submit` blocks beyond that, so memory stays flat however many images
    there are. An error of a write is raised by a later :meth:`submit` or by :meth:`close`; files are atomic, so
    a crash loses at most the pending batches, never leaves half a file.

    Args:
        out_dir (str): Folder of the ``<img_id>.npz`` files.
        max_pending (int): Batches queued before :meth:`submit` waits. Defaults to 4.

    Examples:
        >>> with CAMFileWriter(out_dir) as writer:
        ...     for batch in loader:
        ...         writer.submit(model.test_step(batch))  # samples with ``cam`` and ``cam_keys``
    """

    def __init__(self, out_dir: str, max_pending: int = 4) -> None:
        if int(max_pending) < 1:
            raise ValueError(f'CAMFileWriter: max_pending must be at least 1, got {max_pending}')
        self.out_dir, self.max_pending = out_dir, int(max_pending)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix='cam-writer')
        self._pending = collections.deque()
        self.written = 0

    @staticmethod
    def _write(items: List[Tuple[str, Any, Any]]) -> int:
        for path, cam, keys in items:
            save_cam(path, cam.cpu().float().numpy(), keys.cpu().numpy())
        return len(items)

    def _collect(self, block: bool) -> None:
        while self._pending and (block or self._pending[0].done()):
            self.written += self._pending.popleft().result()  # re-raises a failed write here

    def submit(self, outputs: Sequence) -> None:
        """Queues the files of ``outputs`` (data samples with ``metainfo['img_id']``, ``cam``, ``cam_keys``)."""
        items = [(cam_path(self.out_dir, sample.metainfo['img_id']), sample.cam.detach(), sample.cam_keys.detach())
                 for sample in outputs]
        self._pending.append(self._pool.submit(self._write, items))
        while len(self._pending) > self.max_pending:
            self.written += self._pending.popleft().result()
        self._collect(block=False)

    def close(self) -> int:
        """Waits for every queued file; returns how many files this writer wrote."""
        try:
            self._collect(block=True)
        finally:
            self._pool.shutdown(wait=True)
        return self.written

    def abort(self) -> None:
        """Waits for the queued files without raising their errors (the caller has an error of its own)."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> 'CAMFileWriter':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # the body failed: let queued writes finish, but raise the body's error, not theirs
            self.abort()


def holds_cam_files(cam_dir: str) -> bool:
    """Whether ``cam_dir`` holds at least one CAM file (its record and temporary files do not count)."""
    return os.path.isdir(cam_dir) and any(
        name.endswith(CAM_SUFFIX) and not name.startswith('.') for name in os.listdir(cam_dir))


def read_cam_record(cam_dir: str) -> Optional[dict]:
    """The record of the weights that wrote ``cam_dir`` (``fingerprint``, ``checkpoint``, ``iteration``), or None
    when the folder has none.

    Raises:
        StaleOutputError: (a ``ValueError``) The record is no JSON object with a string ``fingerprint`` (the
            file is named).
    """
    path = os.path.join(cam_dir, CAM_RECORD_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
        if not isinstance(record, dict) or not isinstance(record.get('fingerprint'), str):
            raise ValueError(f'expected an object with a string "fingerprint", got {record!r}')
    except ValueError as e:
        raise StaleOutputError(f'{path}: unreadable record of the weights that wrote the CAM files of {cam_dir} ({e}); '
                               f'delete {cam_dir} to write its CAMs again') from e
    return record


def _write_cam_record(cam_dir: str, fingerprint: str, checkpoint: Optional[str], iteration: Optional[int]) -> None:
    record = dict(fingerprint=fingerprint, checkpoint=checkpoint, iteration=iteration)
    atomic_write_bytes(os.path.join(cam_dir, CAM_RECORD_FILE), json.dumps(record, indent=1).encode())


def record_new_cam_folder(cam_dir: str, fingerprint: str, checkpoint: Optional[str] = None,
                          iteration: Optional[int] = None) -> bool:
    """Records the weights about to write ``cam_dir`` when it holds no CAM file yet (created if needed).

    A folder with CAM files keeps its record (or its lack of one): :func:`check_cam_record` judges it.

    Args:
        cam_dir (str): The CAM folder.
        fingerprint (str): :func:`~csd_mm.utils.checkpoint.weights_fingerprint` of the writing model.
        checkpoint (str, optional): The checkpoint the weights were loaded from, when known.
        iteration (int, optional): The training iteration of the weights, when known.

    Returns:
        bool: Whether the record was written.
    """
    if holds_cam_files(cam_dir):
        return False
    _write_cam_record(cam_dir, fingerprint, checkpoint, iteration)
    return True


def record_rewritten_cam_folder(cam_dir: str, written_ids: Iterable[str], fingerprint: str,
                                checkpoint: Optional[str] = None, iteration: Optional[int] = None) -> bool:
    """Records the weights of a finished run that rewrote a folder without a record (one written before CAM
    folders recorded their weights), when that run wrote every CAM file the folder holds.

    Called once the run's writers have closed (on rank 0, after the other ranks' writers closed too), with the
    ids whose files the run wrote. A file of the folder the run did not write (another split's CAM, or one of
    the images the run did not reach) may be another model's, so the folder then stays without a record and a
    warning names such files.

    Args:
        cam_dir (str): The CAM folder.
        written_ids (Iterable[str]): The image ids whose CAM files the run wrote (and finished).
        fingerprint (str): :func:`~csd_mm.utils.checkpoint.weights_fingerprint` of the writing model.
        checkpoint (str, optional): The checkpoint the weights were loaded from, when known.
        iteration (int, optional): The training iteration of the weights, when known.

    Returns:
        bool: Whether the record was written (False also when the folder has a record already).
    """
    if read_cam_record(cam_dir) is not None:
        return False
    written = set(written_ids)
    not_written = sorted(name[:-len(CAM_SUFFIX)] for name in os.listdir(cam_dir)
                         if name.endswith(CAM_SUFFIX) and not name.startswith('.')
                         and name[:-len(CAM_SUFFIX)] not in written)
    if not_written:
        shown = ', '.join(cam_path(cam_dir, i) for i in not_written[:5])
        print_log(f'CAM folder {cam_dir} stays without {CAM_RECORD_FILE}: this run wrote {len(written)} CAM files '
                  f'there, but not {len(not_written)} others, which may be another model\'s: {shown}'
                  f'{" ..." if len(not_written) > 5 else ""}. Delete {cam_dir} to have them all written by '
                  'one model.', logger='current', level=logging.WARNING)
        return False
    _write_cam_record(cam_dir, fingerprint, checkpoint, iteration)
    print_log(f'CAM folder {cam_dir}: every CAM file was rewritten by this run, so it now records these weights '
              f'({CAM_RECORD_FILE}, fingerprint {fingerprint})', logger='current')
    return True


def _describe_record(record: dict) -> str:
    known = [f'{k} {record[k]}' for k in ('checkpoint', 'iteration') if record.get(k) is not None]
    return record['fingerprint'] + (f' ({", ".join(known)})' if known else '')


def check_cam_record(cam_dir: str, fingerprint: str) -> Optional[dict]:
    """Refuses to add the CAMs of weights ``fingerprint`` to a folder that other weights wrote.

    A folder with CAM files but no record (written before CAM folders recorded their weights) cannot be
    checked: a warning says so and the folder is used as it is.

    Args:
        cam_dir (str): The CAM folder.
        fingerprint (str): :func:`~csd_mm.utils.checkpoint.weights_fingerprint` of the writing model.

    Returns:
        dict | None: The folder's record, None when it has none.

    Raises:
        StaleOutputError: (a ``ValueError``) The record names other weights; the message names the folder,
            both fingerprints and what to do.
    """
    record = read_cam_record(cam_dir)
    if record is None:
        if holds_cam_files(cam_dir):
            print_log(f'CAM folder {cam_dir} has no {CAM_RECORD_FILE} (written before CAM folders recorded their '
                      'weights), so nothing tells whether its CAM files are this model\'s; a CAM pass after '
                      'training keeps existing files as they are, a test run rewrites them and records its weights '
                      f'once it has rewritten them all. Delete {cam_dir} to have them all written by this model.',
                      logger='current', level=logging.WARNING)
        return None
    if record['fingerprint'] != fingerprint:
        raise StaleOutputError(f'CAM folder {cam_dir} holds the CAMs of other weights: written by weights '
                               f'{_describe_record(record)}, while this model\'s weights are {fingerprint}. '
                               'Writing there would mix two models\' CAMs (and keep the other\'s files as if '
                               f'finished). Delete {cam_dir}, or write to another folder (the CAMGenerationHook\'s '
                               'out_dir, or tools/test.py --cam-dir).')
    return record


def load_cam(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Loads a CAM file written by :func:`save_cam` (never unpickles anything).

    Args:
        path (str): The ``.npz`` file.

    Returns:
        tuple: ``cam`` as float32 ``(K, H, W)`` and ``keys`` as int64 ``[K]``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not a valid CAM archive (corrupt, missing entries, pickled objects,
            wrong shapes, K mismatch, NaN/inf values, bad keys).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'CAM file {path} does not exist')
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError('a single array, not a .npz archive')
        with archive:
            missing = {'cam', 'keys'} - set(archive.files)
            if missing:
                raise ValueError(f'missing entries {sorted(missing)} (has {sorted(archive.files)})')
            cam = archive['cam']
            keys = archive['keys']
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as e:
        raise ValueError(f'CAM file {path} cannot be read as a CAM archive: {e}') from e
    _check_cam(cam, keys, f'CAM file {path}')
    return cam.astype(np.float32), keys.astype(np.int64)


def missing_ids(cam_dir: str, ids: Iterable[str]) -> List[str]:
    """Returns the ids (in the given order) that have no CAM file in ``cam_dir`` yet.

    Files are written atomically, so an existing file is a finished one.
    """
    return [i for i in ids if not os.path.isfile(cam_path(cam_dir, i))]


def is_complete(cam_dir: str, ids: Iterable[str]) -> bool:
    """Whether every id in ``ids`` has a CAM file in ``cam_dir``."""
    return not missing_ids(cam_dir, ids)


def load_cam_keys(path: str) -> np.ndarray:
    """Reads only the ``keys`` of a CAM file (cheap: the maps are not decompressed; never unpickles).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not a CAM archive or its keys are not ascending non-negative integers.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'CAM file {path} does not exist')
    try:
        with np.load(path, allow_pickle=False) as archive:
            if 'keys' not in archive.files:
                raise ValueError(f'missing entry keys (has {sorted(archive.files)})')
            keys = archive['keys']
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, AttributeError, TypeError) as e:
        raise ValueError(f'CAM file {path} cannot be read as a CAM archive: {e}') from e
    if keys.ndim != 1 or (keys.size and not np.issubdtype(keys.dtype, np.integer)):
        raise ValueError(f'CAM file {path}: keys must be an integer vector, got dtype {keys.dtype} shape '
                         f'{keys.shape}')
    if keys.size and (keys.min() < 0 or np.any(np.diff(keys) <= 0)):
        raise ValueError(f'CAM file {path}: keys must be non-negative and strictly ascending, got {keys.tolist()}')
    return keys.astype(np.int64)


def check_cam_folder(cam_dir: str,
                     ids: Sequence[str],
                     num_fg_classes: Optional[int] = None,
                     labels: Optional[Mapping[str, Any]] = None,
                     label_file: str = 'the labels') -> None:
    """Checks up front that a CAM folder belongs to the dataset a tool is run on, before anything is written.

    Every tool that reads CAM files (seed evaluation, pseudo masks, the refiners' training sets, the
    co-occurrence diagnostic, the CAM drawings) calls this, so CAMs of another dataset (other ids, more
    classes, other labels) are refused with the file named instead of turning into masks with foreign class
    values. Only each file's ``keys`` are read (:func:`load_cam_keys`).

    Args:
        cam_dir (str): Folder of ``<img_id>.npz`` CAM files.
        ids (Sequence[str]): The ids the tool will read; each must be a plain file name (no ``/``, no ``..``).
        num_fg_classes (int, optional): C, the number of foreground classes: every key must lie in
            ``0..C-1``. None: not checked.
        labels (Mapping[str, array-like], optional): Image id -> ``[C]`` multi-hot label. When given, a CAM
            file's keys must be exactly its image's classes (the CAM files hold the maps of the label's classes).
        label_file (str): Name of the label source, for the messages.

    Raises:
        FileNotFoundError: The folder does not exist or ids have no CAM file (the first ones are named).
        ValueError: An id is not a plain file name, a file is unreadable, or its keys lie outside the classes
            or differ from its label (the file, its keys and the expected classes are named).
    """
    if not os.path.isdir(cam_dir):
        raise FileNotFoundError(f'CAM folder {cam_dir} does not exist')
    ids = list(ids)
    for img_id in ids:
        check_image_id(img_id, f'CAM folder {cam_dir}')
    missing = missing_ids(cam_dir, ids)
    if missing:
        shown = ', '.join(cam_path(cam_dir, i) for i in missing[:5])
        raise FileNotFoundError(f'{len(missing)} of {len(ids)} images have no CAM file in {cam_dir} (CAMs of '
                                f'another dataset or split?): {shown}{" ..." if len(missing) > 5 else ""}')
    for img_id in ids:
        path = cam_path(cam_dir, img_id)
        keys = load_cam_keys(path)
        if num_fg_classes is not None and keys.size and keys.max() >= num_fg_classes:
            raise ValueError(f'CAM file {path} has class ids {keys.tolist()} but the dataset has {num_fg_classes} '
                             f'foreground classes (ids 0..{num_fg_classes - 1}): CAMs of another dataset?')
        if labels is not None:
            if img_id not in labels:
                raise ValueError(f'{label_file}: no label for {img_id!r}, whose CAM file is {path}')
            expected = np.flatnonzero(np.asarray(labels[img_id]).reshape(-1) > 0)
            if keys.tolist() != expected.tolist():
                raise ValueError(f'CAM file {path} has class ids {keys.tolist()} but by {label_file} {img_id!r} '
                                 f'has the classes {expected.tolist()}: CAMs of another dataset or other labels?')
