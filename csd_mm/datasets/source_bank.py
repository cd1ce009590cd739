"""The source bank of CSD: prior localisation masks of the single-label (source-domain) images.

Stage 0 of CSD (Yang et al., BMVC 2023, Sec. 3.1): a baseline classifier trained without the CSD losses gives
a CAM for every single-label image; its one class map, normalised to [0, 1] by the CAM network, becomes a
foreground mask ``M_fg = cam >= tau_fg`` and a background mask ``M_bg = cam < tau_bg`` (IRN's confident-region
thresholds by default); pixels in between are "unsure" and belong to neither. Alternatively the masks come from a
folder of pseudo-mask PNGs: ``M_fg = (mask == c + 1)``, ``M_bg = (mask == 0)``.

On disk one single-channel PNG per source image encodes both masks: 1 = foreground, 0 = background,
255 = unsure (so mmseg's ``LoadAnnotations`` loads it and every geometric transform keeps it aligned with the
image; padding with 255 keeps padded pixels out of both masks). ``index.json`` lists the entries:
``{"img_id", "class", "mask"}``, ``num_classes`` and the ``settings`` the masks were made with
(:func:`source_bank_settings`: ``prior`` 'cam' with ``tau_fg`` / ``tau_bg`` and the fingerprint of the
weights that wrote the CAMs, or 'masks' with ``mask_dir``). The bank is written once and reused only with the
same settings: asking a finished bank for other ones (CAMs of other weights included) is an error naming both
(delete the folder or choose another ``out_dir``), never a silent reuse.
"""
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from csd_mm.utils.cam_io import cam_path, load_cam, read_cam_record
from csd_mm.utils.fileio import StaleOutputError, atomic_write_bytes, read_png, remove_stale_temp_files, write_png

__all__ = ['FG_VALUE', 'BG_VALUE', 'UNSURE_VALUE', 'masks_from_cam', 'masks_from_pseudo_mask',
           'encode_masks', 'build_source_bank', 'load_source_bank', 'source_bank_complete',
           'source_bank_settings', 'check_source_bank_settings', 'check_source_bank_labels',
           'recorded_cam_fingerprint']

FG_VALUE = 1
BG_VALUE = 0
UNSURE_VALUE = 255
INDEX_FILE = 'index.json'
PARTIAL_FILE = 'settings.partial.json'  # the settings of a bank being written (removed once complete)


def masks_from_cam(cam: np.ndarray, tau_fg: float = 0.30,
                   tau_bg: float = 0.05) -> Tuple[np.ndarray, np.ndarray]:
    """Turns one normalised class map ([0, 1]) into the fg / bg prior masks (docs/method.md section 1).

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


def recorded_cam_fingerprint(out_dir: str) -> Optional[str]:
    """The fingerprint of the weights whose CAMs a complete or unfinished bank in ``out_dir`` was built from.

    None when there is no bank, it was built from pseudo masks, or it records no fingerprint (built before
    banks recorded it, or from a CAM folder without a record). An unreadable settings file counts as none here;
    building the bank reports it.
    """
    for name in (INDEX_FILE, PARTIAL_FILE):
        path = osp.join(out_dir, name)
        if not osp.isfile(path):
            continue
        try:
            with open(path) as f:
                stored = json.load(f)
        except ValueError:
            return None
        if not isinstance(stored, dict):
            return None  # malformed: building the bank names the file
        settings = stored.get('settings') if name == INDEX_FILE else stored
        fingerprint = settings.get('cam_fingerprint') if isinstance(settings, dict) else None
        return fingerprint if isinstance(fingerprint, str) else None
    return None


def source_bank_settings(cam_dir: Optional[str] = None,
                         pseudo_mask_dir: Optional[str] = None,
                         tau_fg: float = 0.30,
                         tau_bg: float = 0.05) -> Dict:
    """The settings that decide a bank's masks, as stored in its index under ``settings``.

    With CAMs: ``dict(prior='cam', tau_fg=..., tau_bg=...)``, plus ``cam_fingerprint``, the fingerprint of the
    weights that wrote the CAM folder, when the folder records it (:func:`~csd_mm.utils.cam_io.read_cam_record`;
    the folder's path is not part of it: the hook always reads its own work dir's CAMs). With pseudo masks:
    ``dict(prior='masks', mask_dir=<absolute path>)``; the thresholds do not apply there.

    Args:
        cam_dir (str, optional): Folder of the CAM files (CAM prior).
        pseudo_mask_dir (str, optional): Folder of the pseudo-mask PNGs (mask prior).
        tau_fg (float): Foreground threshold of the CAM prior. Defaults to 0.30.
        tau_bg (float): Background threshold of the CAM prior. Defaults to 0.05.

    Returns:
        dict: The JSON-ready settings.

    Raises:
        ValueError: Not exactly one of ``cam_dir`` and ``pseudo_mask_dir`` is given, or (CAM prior)
            ``tau_bg`` exceeds ``tau_fg``.
    """
    if (cam_dir is None) == (pseudo_mask_dir is None):
        raise ValueError('give exactly one of cam_dir and pseudo_mask_dir')
    if cam_dir is not None:
        if tau_bg > tau_fg:
            raise ValueError(f'tau_bg ({tau_bg}) must not exceed tau_fg ({tau_fg})')
        settings = dict(prior='cam', tau_fg=float(tau_fg), tau_bg=float(tau_bg))
        record = read_cam_record(cam_dir)
        if record is not None:
            settings['cam_fingerprint'] = record['fingerprint']
        return settings
    return dict(prior='masks', mask_dir=osp.normpath(osp.abspath(pseudo_mask_dir)))


def _describe(settings: Dict) -> str:
    if settings.get('prior') == 'cam':
        weights = settings.get('cam_fingerprint')
        return (f"CAM prior, tau_fg={settings.get('tau_fg')}, tau_bg={settings.get('tau_bg')}"
                + ('' if weights is None else f', CAMs of weights {weights}'))
    if settings.get('prior') == 'masks':
        return f"pseudo-mask prior from {settings.get('mask_dir')}"
    return repr(settings)


def _same_settings(stored: Dict, asked: Dict, bank: str) -> bool:
    """Whether a bank's stored settings are the asked ones.

    The CAM fingerprint is compared when both record one. A bank that records none while the CAM folder does
    (built before banks recorded it) is taken with a warning; a CAM folder without a record (written before CAM
    folders recorded their weights, or not written yet) cannot tell, and its CAM pass warns about it.
    """
    key = 'cam_fingerprint'
    if key in stored and key in asked:
        return stored == asked
    if key not in stored and key in asked and stored == {k: v for k, v in asked.items() if k != key}:
        print_log(f'source bank {bank} records no CAM fingerprint (built before banks recorded it), so nothing '
                  f'tells whether its masks come from the CAMs of weights {asked[key]}; it is used as it is. '
                  f'Delete {bank} to rebuild it from these CAMs.', logger='current', level=logging.WARNING)
        return True
    return {k: v for k, v in stored.items() if k != key} == {k: v for k, v in asked.items() if k != key}


def check_source_bank_settings(out_dir: str, settings: Dict) -> None:
    """Refuses to reuse the complete bank in ``out_dir`` when it was built with other settings.

    Nothing is checked when ``out_dir`` holds no complete bank. A bank written before its index recorded the
    settings (no ``settings`` entry) is refused too, since nothing tells whether it matches; such a bank can
    still be read for training with :func:`load_source_bank`.

    Args:
        out_dir (str): The bank folder.
        settings (dict): The asked settings (:func:`source_bank_settings`).

    Raises:
        StaleOutputError: (a ``ValueError``) The stored settings differ from (or do not tell) the asked ones;
            the message names the bank folder, both settings and how to proceed.
    """
    if not source_bank_complete(out_dir):
        return
    index = load_source_bank(out_dir)
    stored = index.get('settings')
    how = (f'Delete {out_dir} to rebuild it with the asked settings, or choose another out_dir '
           '(the CAM hook\'s source_bank.out_dir).')
    if stored is None:
        raise StaleOutputError(f'source bank {out_dir} was written before banks recorded their settings '
                               f'(its {INDEX_FILE} has no "settings"), so it cannot be checked against the asked '
                               f'{_describe(settings)}. {how}')
    if not _same_settings(stored, settings, out_dir):
        raise StaleOutputError(f'source bank {out_dir} exists with other settings: built with {_describe(stored)}, '
                               f'asked for {_describe(settings)}. {how}')


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
    means a complete bank, which is returned as it is when it was built with the same settings
    (:func:`source_bank_settings`) and refused otherwise. The settings are also written to
    ``settings.partial.json`` before the first mask, so a crashed run only resumes with the same settings.

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
        dict: The index (``entries``, ``settings`` and ``num_classes``).

    Raises:
        StaleOutputError: (a ``ValueError``) A complete or partial bank in ``out_dir`` has other settings (or,
            written before this check existed, records none).
        ValueError: An input is invalid.
    """
    settings = source_bank_settings(cam_dir, pseudo_mask_dir, tau_fg, tau_bg)
    if source_bank_complete(out_dir):
        check_source_bank_settings(out_dir, settings)
        return load_source_bank(out_dir)
    labels = np.asarray(labels)
    if len(ids) != len(labels):
        raise ValueError(f'{len(ids)} ids but {len(labels)} label vectors')
    single = np.flatnonzero(labels.sum(1) == 1)
    mask_dir = osp.join(out_dir, 'masks')
    _claim_partial_bank(out_dir, mask_dir, settings)
    for folder in (out_dir, mask_dir):  # the temporary files of a killed previous run
        remove_stale_temp_files(folder)
    entries: List[Dict] = []
    empty: List[str] = []
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
                fg, bg = masks_from_pseudo_mask(read_png(src), cls)
            encoded = encode_masks(fg, bg)
            write_png(dst, encoded)
        else:  # written by an earlier, interrupted build
            encoded = read_png(dst)
        if not (encoded == FG_VALUE).any():
            empty.append(img_id)  # nothing to paste (e.g. an all-zero CAM): said once, below
        entries.append(dict(img_id=img_id, **{'class': cls}, mask=rel))
        if bar is not None:
            bar.update()
    if empty:
        print_log(f'source bank {out_dir}: {len(empty)} of {len(single)} single-label images have an empty '
                  f'foreground mask, so pasting them pastes nothing (their consistency terms are 0), e.g. '
                  f'{empty[0]!r} ({mask_dir}/{empty[0]}.png); an all-zero CAM or a pseudo mask without the class '
                  'gives this', logger='current', level=logging.WARNING)
    index = dict(entries=entries, settings=settings, num_classes=int(labels.shape[1]))
    atomic_write_bytes(osp.join(out_dir, INDEX_FILE), json.dumps(index, indent=1).encode())
    marker = osp.join(out_dir, PARTIAL_FILE)
    if osp.exists(marker):
        os.remove(marker)
    return index


def _claim_partial_bank(out_dir: str, mask_dir: str, settings: Dict) -> None:
    """Records ``settings`` for an unfinished bank, or checks them against a crashed run's.

    Raises:
        StaleOutputError: (a ``ValueError``) The crashed run used other settings, or left masks without
            recording its settings.
    """
    marker = osp.join(out_dir, PARTIAL_FILE)
    how = f'Delete {out_dir} to rebuild the bank, or choose another out_dir.'
    if osp.isfile(marker):
        try:
            with open(marker) as f:
                stored = json.load(f)
        except ValueError as e:
            raise StaleOutputError(f'{marker}: unreadable settings of an unfinished source bank ({e}). {how}') from e
        if not _same_settings(stored, settings, out_dir):
            raise StaleOutputError(f'unfinished source bank {out_dir} was started with {_describe(stored)}, '
                                   f'asked for {_describe(settings)}; resuming would mix both. {how}')
        return
    if osp.isdir(mask_dir) and os.listdir(mask_dir):
        raise StaleOutputError(f'unfinished source bank {out_dir} holds masks but no {PARTIAL_FILE} (written before '
                               f'banks recorded their settings), so resuming it with {_describe(settings)} could mix '
                               f'settings. {how}')
    os.makedirs(mask_dir, exist_ok=True)
    atomic_write_bytes(marker, json.dumps(settings, indent=1).encode())


def load_source_bank(out_dir: str) -> Dict:
    """Reads a bank's index for training; a clear error when it is missing or malformed.

    The settings are not checked here (:func:`check_source_bank_settings` does that for a build), so a bank
    written before its index recorded them still loads.
    """
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


def check_source_bank_labels(bank_dir: str, index: Dict, ids: Sequence[str], labels: np.ndarray,
                             label_source: str = 'the training labels') -> List[Dict]:
    """Refuses a bank whose entries disagree with the current labels (a bank of another dataset or labels).

    Every entry whose image is one of ``ids`` must be single-label under ``labels`` and have the class the entry
    is stored under; the bank's ``num_classes`` (when recorded) must be the labels' C. Entries of images outside
    ``ids`` are left out with a warning (a training on a subset of the bank's dataset, e.g. ``indices``), unless
    no entry is in ``ids`` (a bank of another dataset), which is refused.

    Args:
        bank_dir (str): The bank folder (named in the messages).
        index (dict): Its index (:func:`load_source_bank`).
        ids (Sequence[str]): The training dataset's image ids.
        labels (np.ndarray): ``[len(ids), C]`` multi-hot labels aligned with ``ids``.
        label_source (str): Name of the labels (e.g. the label file), for the messages.

    Returns:
        list[dict]: The entries whose image is in ``ids``.

    Raises:
        ValueError: Naming the bank folder, the problem, an example id and how many entries are affected.
    """
    labels = np.asarray(labels)
    how = f'Rebuild the bank from these labels (delete {bank_dir} and rerun stage 0), or point to the right one.'
    stored = index.get('num_classes')
    if stored is not None and labels.ndim == 2 and int(stored) != labels.shape[1]:
        raise ValueError(f'source bank {bank_dir} was built for {stored} foreground classes but {label_source} '
                         f'have {labels.shape[1]}. {how}')
    row_of = {img_id: i for i, img_id in enumerate(ids)}
    unknown = [e['img_id'] for e in index['entries'] if e['img_id'] not in row_of]
    if unknown and len(unknown) == len(index['entries']):
        raise ValueError(f'source bank {bank_dir}: {len(unknown)} of {len(index["entries"])} entries name images '
                         f'that are not in the training dataset (e.g. {unknown[0]!r}). {how}')
    if unknown:
        print_log(f'source bank {bank_dir}: {len(unknown)} of {len(index["entries"])} entries name images that are '
                  f'not in the training dataset (e.g. {unknown[0]!r}); they are left out (a training on a subset?)',
                  logger='current', level=logging.WARNING)
    entries = [e for e in index['entries'] if e['img_id'] in row_of]
    wrong = []
    for e in entries:
        present = np.flatnonzero(labels[row_of[e['img_id']]] > 0).tolist()
        if present != [int(e['class'])]:
            wrong.append((e['img_id'], int(e['class']), present))
    if wrong:
        img_id, cls, present = wrong[0]
        raise ValueError(f'source bank {bank_dir}: {len(wrong)} entries are not single-label images of the class '
                         f'they are stored under, by {label_source} (e.g. {img_id!r} is stored under class {cls} '
                         f'but labelled {present}). {how}')
    return entries
