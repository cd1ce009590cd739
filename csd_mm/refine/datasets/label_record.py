"""The record that ties a folder of cached confident labels to the settings and CAMs that made them.

:class:`~csd_mm.refine.datasets.AffinityLabelDataset` computes PSA's confident labels lazily and caches them as
PNGs. A label depends on the recipe (PSA's two CRFs or IRN's thresholds with a label CRF), its numbers (the two
alphas or the two thresholds), the CRF kernels (``crf_cfg``) and the CAM file it was made from, so the folder keeps
``settings.json`` (written atomically):

* ``settings``: ``cam_dir`` (absolute), ``recipe`` (``'psa'`` or ``'irn'``), the recipe's numbers
  (``low_alpha`` / ``high_alpha`` or ``conf_fg`` / ``conf_bg``) and ``crf_cfg``, the CRF keyword arguments with
  the defaults of the recipe's CRF (:func:`~csd_mm.refine.functional.crf.dense_crf` or
  :func:`~csd_mm.refine.functional.crf.dense_crf_labels`) filled in (so ``{}`` and the defaults spelt out are the
  same settings);
* ``cams``: per image id ``[size, mtime_ns]`` of its CAM file, a cheap identity that changes whenever the CAM
  file is rewritten (regenerated CAMs, even equal ones).

A dataset reuses the folder's labels only when the settings match and no labelled image's CAM file changed;
otherwise it refuses with an error naming the folder, what differs and what to do (never a silent reuse of
stale labels). Differences that touch no cached label (a folder without label PNGs; a changed CAM whose label
was not made yet) just update the record. A folder of labels from before the record existed is used with a
warning, since nothing tells whether it matches; a record from before the recipe switch (no ``recipe``) was made
by PSA's recipe, the only one then, and is read so.
"""
import inspect
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence

from mmengine.logging import print_log

from ...utils.cam_io import CAM_SUFFIX, cam_path
from ...utils.fileio import StaleOutputError, atomic_write_bytes
from ..functional.crf import dense_crf, dense_crf_labels

__all__ = ['RECORD_FILE', 'RECIPE_NUMBERS', 'effective_crf_cfg', 'confident_label_settings', 'cam_stamps',
           'settings_differences', 'changed_cam_ids', 'claim_label_dir']

RECORD_FILE = 'settings.json'
LABEL_SUFFIX = '.png'
#: confident-label recipe -> the names of its numbers (PSA: the two background powers; IRN: the two thresholds)
RECIPE_NUMBERS = {'psa': ('low_alpha', 'high_alpha'), 'irn': ('conf_fg', 'conf_bg')}
#: confident-label recipe -> the CRF whose keyword defaults complete ``crf_cfg``
_RECIPE_CRF = {'psa': dense_crf, 'irn': dense_crf_labels}


def _check_recipe(recipe: str) -> None:
    if recipe not in RECIPE_NUMBERS:
        raise ValueError(f'confident-label recipe must be one of {sorted(RECIPE_NUMBERS)}, got {recipe!r}')


def effective_crf_cfg(crf_cfg: Optional[Mapping] = None, recipe: str = 'psa') -> Dict:
    """``crf_cfg`` with the defaults of the recipe's CRF for the missing kernels.

    Args:
        crf_cfg (Mapping, optional): Keyword arguments of the recipe's CRF (``n_iters``, ``pos_xy_std``, ...;
            IRN's label CRF also ``gt_prob``).
        recipe (str): ``'psa'`` (:func:`~csd_mm.refine.functional.crf.dense_crf`) or ``'irn'``
            (:func:`~csd_mm.refine.functional.crf.dense_crf_labels`). Defaults to 'psa'.

    Returns:
        dict: Every keyword argument of that CRF with its value, JSON-ready.

    Raises:
        ValueError: An unknown recipe, or ``crf_cfg`` has a key that the recipe's CRF does not take.
    """
    _check_recipe(recipe)
    crf = _RECIPE_CRF[recipe]
    defaults = {name: p.default for name, p in inspect.signature(crf).parameters.items()
                if p.default is not inspect.Parameter.empty}
    crf_cfg = dict(crf_cfg or {})
    unknown = sorted(set(crf_cfg) - set(defaults))
    if unknown:
        raise ValueError(f'crf_cfg has keys {unknown} that {crf.__name__} (the CRF of the {recipe!r} confident '
                         f'labels) does not take (it takes {sorted(defaults)})')
    return json.loads(json.dumps(dict(defaults, **crf_cfg), sort_keys=True))  # tuples -> lists, as stored


def confident_label_settings(cam_dir: str, recipe: str, numbers: Mapping[str, float],
                             crf_cfg: Optional[Mapping] = None) -> Dict:
    """The settings that decide the confident labels, as recorded under ``settings``.

    Args:
        cam_dir (str): Folder of the CAM files (recorded as an absolute, normalised path).
        recipe (str): ``'psa'`` (two CRFs on ``(1 - max cam) ** alpha`` backgrounds) or ``'irn'`` (two
            thresholds with a label CRF).
        numbers (Mapping): The recipe's numbers, exactly those of :data:`RECIPE_NUMBERS` (``low_alpha`` /
            ``high_alpha`` or ``conf_fg`` / ``conf_bg``).
        crf_cfg (Mapping, optional): Keyword arguments of the recipe's CRF (see :func:`effective_crf_cfg`).

    Returns:
        dict: ``cam_dir``, ``recipe``, the numbers (floats), ``crf_cfg``.
    """
    _check_recipe(recipe)
    if sorted(numbers) != sorted(RECIPE_NUMBERS[recipe]):
        raise ValueError(f'the {recipe!r} confident labels take the numbers {list(RECIPE_NUMBERS[recipe])}, got '
                         f'{sorted(numbers)}')
    return dict(cam_dir=osp.normpath(osp.abspath(cam_dir)), recipe=recipe,
                **{name: float(value) for name, value in numbers.items()},
                crf_cfg=effective_crf_cfg(crf_cfg, recipe))


def cam_stamps(cam_dir: str, ids: Sequence[str]) -> Dict[str, List[int]]:
    """``{img_id: [size, mtime_ns]}`` of the CAM files of ``ids`` (one ``stat`` per file, no reading)."""
    stamps = {}
    for img_id in ids:
        st = os.stat(cam_path(cam_dir, img_id))
        stamps[img_id] = [int(st.st_size), int(st.st_mtime_ns)]
    return stamps


def settings_differences(stored: Mapping, asked: Mapping) -> List[str]:
    """One ``'<name>: <stored> (labels) vs <asked> (asked)'`` line per setting that differs (nested dicts such as
    ``crf_cfg`` are compared key by key)."""
    lines = []
    for key in sorted(set(stored) | set(asked)):
        old, new = stored.get(key), asked.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            lines += [f'{key}.{line}' for line in settings_differences(old, new)]
        elif old != new:
            lines.append(f'{key}: {old!r} (labels) vs {new!r} (asked)')
    return lines


def changed_cam_ids(stored: Mapping[str, Sequence[int]], current: Mapping[str, Sequence[int]]) -> List[str]:
    """The ids (sorted) in both stamp maps whose CAM file's ``[size, mtime_ns]`` differ."""
    return sorted(i for i in set(stored) & set(current) if list(stored[i]) != list(current[i]))


def _has_labels(label_dir: str) -> bool:
    if not osp.isdir(label_dir):
        return False
    with os.scandir(label_dir) as entries:
        return any(e.name.endswith(LABEL_SUFFIX) and not e.name.startswith('.') for e in entries)


def _write(path: str, record: Dict) -> None:
    atomic_write_bytes(path, json.dumps(record, sort_keys=True).encode())


def claim_label_dir(label_dir: str, settings: Dict, stamps: Dict[str, List[int]],
                    where: str = 'AffinityLabelDataset') -> None:
    """Checks ``label_dir``'s record against ``settings`` / ``stamps`` and records them for new labels.

    * no record, no label PNG: the record is written (the folder is created);
    * no record but label PNGs (a folder from before the record existed): a warning, nothing written;
    * a record: its settings must equal ``settings`` and no id whose label PNG exists may have another CAM
      stamp; then the stamps of ``ids`` are merged in (written only when something changed). With no label PNG
      in the folder the record is simply replaced.

    Args:
        label_dir (str): The label cache folder (``<img_id>.png``).
        settings (dict): :func:`confident_label_settings` of the asking dataset.
        stamps (dict): :func:`cam_stamps` of its ids.
        where (str): Prefix of the messages. Defaults to 'AffinityLabelDataset'.

    Raises:
        StaleOutputError: (a ``ValueError``) An unreadable record, other settings or changed CAM files of
            cached labels; the message names the folder, what differs and how to proceed.
    """
    path = osp.join(label_dir, RECORD_FILE)
    how = (f'Delete {label_dir} to recompute the labels from the current CAMs and settings, or set the '
           'dataset\'s label_dir to another folder.')
    has_labels = _has_labels(label_dir)
    if not osp.isfile(path):
        if has_labels:
            print_log(f'{where}: {label_dir} holds confident labels but no {RECORD_FILE} (made before label '
                      'folders recorded their settings), so they are reused without checking that the recipe, its '
                      f'numbers, crf_cfg and CAMs match. {how}', logger='current', level=logging.WARNING)
            return
        _write(path, dict(settings=settings, cams=stamps))
        return
    try:
        with open(path) as f:
            record = json.load(f)
        stored_settings, stored_stamps = record['settings'], record['cams']
        if not isinstance(stored_settings, dict) or not isinstance(stored_stamps, dict):
            raise ValueError('"settings" and "cams" must be objects')
        # records from before the recipe switch hold PSA's labels, the only recipe then
        stored_settings.setdefault('recipe', 'psa')
    except (ValueError, KeyError) as e:
        raise StaleOutputError(f'{where}: {path} is not a readable label record ({e}). {how}') from e
    if not has_labels:  # nothing cached that could be stale: start afresh
        if stored_settings != settings or stored_stamps != stamps:
            _write(path, dict(settings=settings, cams=stamps))
        return
    differences = settings_differences(stored_settings, settings)
    if differences:
        raise StaleOutputError(f'{where}: the confident labels in {label_dir} were made with other settings: '
                               f'{"; ".join(differences)}. {how}')
    changed = [i for i in changed_cam_ids(stored_stamps, stamps)
               if osp.isfile(osp.join(label_dir, i + LABEL_SUFFIX))]
    if changed:
        raise StaleOutputError(f'{where}: {len(changed)} CAM files in {settings["cam_dir"]} changed (size or '
                               f'modification time) since their confident labels in {label_dir} were made, e.g. '
                               f'{[i + CAM_SUFFIX for i in changed[:5]]} (CAMs regenerated?). {how}')
    merged = dict(stored_stamps, **stamps)
    if merged != stored_stamps:
        _write(path, dict(settings=settings, cams=merged))
