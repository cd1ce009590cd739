"""Co-occurrence confusion: how much of one class is predicted as the class it usually appears with.

The diagnostic of what CSD (Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic
Segmentation", BMVC 2023) claims to improve: a classifier trained on image-level labels confuses classes that
co-occur (horse / rider, train / railway), so their CAMs spread onto each other. For the ``top_k`` class
pairs that co-occur most often in the image-level labels it reports, over the images whose label holds both
classes, the share of the ground-truth pixels of ``a`` predicted as ``b`` and of ``b`` predicted as ``a``;
and the per-class IoU on single-label vs multi-label images.

Classes: foreground classes are the 0-based indices ``c`` of the label vectors (``[C]`` multi-hot); in masks
and confusion matrices they are value / row ``c + 1``, with 0 the background (``N = C + 1`` classes).

Confusion matrices are ``int64 [N, N + 1]``, indexed ``[gt, pred]``: the ``N x N`` block counts pixels of
ground truth ``g`` predicted as ``p``; the last column counts pixels the prediction leaves unlabelled (its
``ignore_index``, e.g. the unsure pixels of a pseudo mask). Those count in their ground-truth class's area
(a miss, as mmseg's ``IoUMetric`` counts a prediction of 255) but in no predicted class. Pixels whose ground
truth is ``ignore_index`` are not counted.

The pure functions come first; :func:`cooccurrence_confusion_of_dir` reads a folder of CAM files (seeds at a
background score, :func:`~csd_mm.evaluation.functional.seed_sweep.seed_from_cam`) or of mask PNGs.
"""
import json
import math
import os
import os.path as osp
import sys
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from csd_mm.datasets.cooccurrence import cooccurrence_counts
from csd_mm.utils.cam_io import CAM_SUFFIX, cam_path, check_cam_folder, load_cam
from csd_mm.utils.fileio import atomic_write, read_png
from .seed_sweep import seed_from_cam

__all__ = [
    'top_cooccurring_pairs', 'confusion_matrix', 'empty_confusions', 'accumulate_confusions',
    'confusion_shares', 'confusion_iou', 'summarize_cooccurrence_confusion', 'detect_prediction_kind',
    'cooccurrence_confusion_of_dir', 'format_cooccurrence_confusion', 'dump_cooccurrence_confusion'
]

Pair = Tuple[int, int]


# ----------------------------------------------------------------------------------------------- pure maths
def top_cooccurring_pairs(labels: np.ndarray, top_k: int = 3) -> List[Tuple[int, int, int]]:
    """The ``top_k`` class pairs held together by the most image labels.

    Args:
        labels (np.ndarray): ``[N_img, C]`` multi-hot image-level labels (any positive value is present).
        top_k (int): How many pairs. Defaults to 3.

    Returns:
        list[tuple[int, int, int]]: ``(a, b, count)`` with foreground indices ``a < b`` and ``count`` the
        number of images whose label holds both; most frequent first, ties by ``(a, b)``. Pairs that never
        co-occur are left out, so fewer than ``top_k`` may come back.
    """
    if top_k < 1:
        raise ValueError(f'top_k must be >= 1, got {top_k}')
    counts = cooccurrence_counts(labels, include_self=False)
    a, b = np.triu_indices(counts.shape[0], k=1)
    n = counts[a, b]
    order = np.lexsort((b, a, -n))  # count descending, then (a, b) ascending
    return [(int(a[i]), int(b[i]), int(n[i])) for i in order[:top_k] if n[i] > 0]


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """The confusion matrix of one image (see the module docstring for the layout).

    Args:
        gt (np.ndarray): ``(H, W)`` ground truth, values in ``[0, num_classes)`` or ``ignore_index``.
        pred (np.ndarray): ``(H, W)`` prediction, same value range.
        num_classes (int): ``N``, classes including background.
        ignore_index (int): Not-counted ground truth / unlabelled prediction. Defaults to 255.

    Returns:
        np.ndarray: ``int64 [N, N + 1]``.

    Raises:
        ValueError: The shapes differ or a value lies outside ``[0, N)`` and is not ``ignore_index``.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f'ground truth has shape {gt.shape} but the prediction has {pred.shape}')
    n = int(num_classes)
    for name, arr in (('ground truth', gt), ('prediction', pred)):
        values = arr[arr != ignore_index]
        bad = (values < 0) | (values >= n)
        if bad.any():
            raise ValueError(f'{name} has values {np.unique(values[bad])[:10].tolist()} outside 0..{n - 1} '
                             f'and ignore index {ignore_index}')
    valid = gt != ignore_index
    g = gt[valid].astype(np.int64)
    p = pred[valid].astype(np.int64)
    p[p == ignore_index] = n  # the "unlabelled" column
    return np.bincount(g * (n + 1) + p, minlength=n * (n + 1)).reshape(n, n + 1)


def empty_confusions(num_classes: int, num_pairs: int) -> Dict[str, np.ndarray]:
    """Zero totals for :func:`accumulate_confusions`: ``pairs`` ``[P, N, N + 1]``, ``single`` and ``multi``
    ``[N, N + 1]`` and the image counts ``pair_images`` ``[P]``, ``single_images``, ``multi_images``."""
    n = int(num_classes)
    return dict(pairs=np.zeros((num_pairs, n, n + 1), np.int64), single=np.zeros((n, n + 1), np.int64),
                multi=np.zeros((n, n + 1), np.int64), pair_images=np.zeros(num_pairs, np.int64),
                single_images=np.zeros((), np.int64), multi_images=np.zeros((), np.int64))


def accumulate_confusions(totals: Dict[str, np.ndarray], conf: np.ndarray, label: np.ndarray,
                          pairs: Sequence[Pair]) -> Dict[str, np.ndarray]:
    """Adds one image's confusion to the totals its image-level label selects.

    The image counts for pair ``(a, b)`` when its label holds both ``a`` and ``b``, for ``single`` when it holds
    exactly one class and for ``multi`` when it holds two or more (an image without a class counts for none).

    Args:
        totals (dict): From :func:`empty_confusions`; updated in place.
        conf (np.ndarray): ``[N, N + 1]`` confusion of the image (:func:`confusion_matrix`).
        label (np.ndarray): ``[C]`` multi-hot label of the image.
        pairs (Sequence[tuple]): The ``(a, b)`` foreground index pairs, in the order of ``totals['pairs']``.

    Returns:
        dict: ``totals``.
    """
    present = np.asarray(label).reshape(-1) > 0
    for i, (a, b) in enumerate(pairs):
        if present[a] and present[b]:
            totals['pairs'][i] += conf
            totals['pair_images'][i] += 1
    num = int(present.sum())
    if num == 1:
        totals['single'] += conf
        totals['single_images'] += 1
    elif num >= 2:
        totals['multi'] += conf
        totals['multi_images'] += 1
    return totals


def confusion_shares(conf: np.ndarray, a: int, b: int) -> Tuple[float, float]:
    """Shares, in percent, of the ground-truth pixels of foreground class ``a`` predicted as ``b`` and of
    ``b`` predicted as ``a`` (rows ``a + 1`` / ``b + 1`` of ``conf``, unlabelled pixels included in the total).

    Returns:
        tuple[float, float]: ``(a -> b, b -> a)``; NaN for a class without ground-truth pixels.
    """
    conf = np.asarray(conf)

    def share(g: int, p: int) -> float:
        total = conf[g].sum()
        return 100.0 * float(conf[g, p]) / float(total) if total > 0 else math.nan

    return share(a + 1, b + 1), share(b + 1, a + 1)


def confusion_iou(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU, in percent, of a ``[N, N + 1]`` confusion: ``TP / (gt area + predicted area - TP)``.

    The gt area includes the pixels the prediction leaves unlabelled. A class absent from both ground truth and
    prediction gets NaN (excluded from a ``nanmean``, as in mmseg's ``IoUMetric``).

    Returns:
        np.ndarray: float64 ``[N]``.
    """
    conf = np.asarray(conf)
    n = conf.shape[0]
    if conf.ndim != 2 or conf.shape[1] != n + 1:
        raise ValueError(f'conf must have shape [N, N + 1], got {conf.shape}')
    tp = np.diagonal(conf[:, :n]).astype(np.float64)
    union = conf.sum(axis=1) + conf[:, :n].sum(axis=0) - tp
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(union > 0, 100.0 * tp / np.where(union > 0, union, 1), np.nan)


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def summarize_cooccurrence_confusion(totals: Dict[str, np.ndarray], pairs: Sequence[Tuple[int, int, int]],
                                     class_names: Sequence[str]) -> Dict:
    """The report of accumulated totals.

    Args:
        totals (dict): From :func:`accumulate_confusions`.
        pairs (Sequence[tuple]): ``(a, b, count)`` from :func:`top_cooccurring_pairs`, in the order of
            ``totals['pairs']``.
        class_names (Sequence[str]): ``N`` names, background first.

    Returns:
        dict: ``pairs``: one dict per pair with ``a``, ``b`` (names), ``a_index``, ``b_index`` (foreground
        indices), ``images`` (accumulated images whose label holds both), ``a_to_b`` and ``b_to_a`` (percent of the
        ground-truth pixels of one class predicted as the other, NaN when absent); ``per_class_iou``:
        ``{'single': {name: IoU %}, 'multi': {...}}``; ``miou``: ``{'single': .., 'multi': ..}`` (NaN-mean);
        ``num_single`` and ``num_multi`` (image counts).
    """
    names = list(class_names)
    out_pairs = []
    for i, (a, b, _) in enumerate(pairs):
        a_to_b, b_to_a = confusion_shares(totals['pairs'][i], a, b)
        out_pairs.append(dict(a=names[a + 1], b=names[b + 1], a_index=int(a), b_index=int(b),
                              images=int(totals['pair_images'][i]), a_to_b=a_to_b, b_to_a=b_to_a))
    iou = {group: confusion_iou(totals[group]) for group in ('single', 'multi')}
    return dict(pairs=out_pairs,
                per_class_iou={g: {n: float(v) for n, v in zip(names, iou[g])} for g in iou},
                miou={g: _nanmean(iou[g]) for g in iou},
                num_single=int(totals['single_images']), num_multi=int(totals['multi_images']))


# ----------------------------------------------------------------------------------------------- folders
def _shown(paths: Sequence[str], total: int) -> str:
    return ', '.join(paths[:5]) + (f' ... ({total} in all)' if total > 5 else '')


def detect_prediction_kind(pred_dir: str, ids: Sequence[str]) -> str:
    """Whether ``pred_dir`` holds CAM files (``'cam'``, ``<id>.npz``) or mask PNGs (``'mask'``) for ``ids``.

    Raises:
        FileNotFoundError: The folder does not exist, holds neither kind for ``ids``, or misses some ids (the
            message names the missing files).
        ValueError: It holds both kinds for ``ids``.
    """
    if not osp.isdir(pred_dir):
        raise FileNotFoundError(f'prediction folder {pred_dir} does not exist')
    files = set(os.listdir(pred_dir))
    has = {kind: [i for i in ids if i + suffix in files] for kind, suffix in (('cam', CAM_SUFFIX), ('mask', '.png'))}
    if has['cam'] and has['mask']:
        raise ValueError(f'{pred_dir} holds both CAM files ({len(has["cam"])} of the split\'s ids, e.g. '
                         f'{has["cam"][0]}{CAM_SUFFIX}) and mask PNGs ({len(has["mask"])}, e.g. '
                         f'{has["mask"][0]}.png); give a folder of one kind')
    if not has['cam'] and not has['mask']:
        raise FileNotFoundError(f'{pred_dir} holds no CAM file (<id>{CAM_SUFFIX}) and no mask (<id>.png) of the '
                                f'{len(ids)} ids of the split (e.g. {ids[0]}); wrong folder or split?')
    kind = 'cam' if has['cam'] else 'mask'
    suffix = CAM_SUFFIX if kind == 'cam' else '.png'
    if len(has[kind]) < len(ids):
        present = set(has[kind])
        missing = [osp.join(pred_dir, i + suffix) for i in ids if i not in present]
        raise FileNotFoundError(f'{len(missing)} of {len(ids)} ids of the split have no '
                                f'{"CAM file" if kind == "cam" else "mask"} in {pred_dir}: '
                                f'{_shown(missing, len(missing))}')
    return kind


def _labels_matrix(labels: Union[Mapping[str, np.ndarray], np.ndarray], ids: Sequence[str]) -> np.ndarray:
    if isinstance(labels, Mapping):
        missing = [i for i in ids if i not in labels]
        if missing:
            raise ValueError(f'no image-level label for {len(missing)} ids of the split: '
                             f'{_shown(missing, len(missing))}')
        return np.stack([np.asarray(labels[i], dtype=np.float32).reshape(-1) for i in ids])
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[0] != len(ids):
        raise ValueError(f'labels must be a mapping id -> vector or a [{len(ids)}, C] array aligned with the '
                         f'ids, got shape {labels.shape}')
    return labels


def _read_prediction(kind: str, path: str, num_fg: int, threshold: Optional[float],
                     ignore_index: int) -> np.ndarray:
    """The label map of one prediction file, with its values checked against the ``num_fg`` classes."""
    if kind == 'cam':
        cam, keys = load_cam(path)  # its keys were checked up front (check_cam_folder)
        return seed_from_cam(cam, keys, threshold)
    pred = read_png(path)
    values = np.unique(pred)
    bad = values[(values > num_fg) & (values != ignore_index)]
    if bad.size:
        raise ValueError(f'mask {path} holds values {bad[:10].tolist()} outside 0..{num_fg} and ignore index '
                         f'{ignore_index}: a mask of another dataset?')
    return pred


def cooccurrence_confusion_of_dir(pred_dir: str,
                                  gt_dir: str,
                                  ids: Sequence[str],
                                  labels: Union[Mapping[str, np.ndarray], np.ndarray],
                                  threshold: Optional[float] = None,
                                  top_k: int = 1,
                                  class_names: Optional[Sequence[str]] = None,
                                  progress: bool = False,
                                  ignore_index: int = 255,
                                  gt_suffix: str = '.png') -> Dict:
    """The co-occurrence confusion of a folder of CAM files or of mask PNGs against the ground truth.

    Args:
        pred_dir (str): Folder of ``<id>.npz`` CAM files (seeds: argmax over ``[threshold, cams]``, ties to
            background, as the seed sweep) or of ``<id>.png`` masks (values ``0..C`` and ``ignore_index``,
            e.g. pseudo masks or segmentation predictions); detected from the files of ``ids``.
        gt_dir (str): Folder of ``<id><gt_suffix>`` ground-truth masks.
        ids (Sequence[str]): Image ids to evaluate (e.g. :func:`csd_mm.datasets.read_split`).
        labels (Mapping | np.ndarray): Image-level labels: id -> ``[C]`` vector (as
            :func:`csd_mm.datasets.load_cls_labels` returns) or a ``[len(ids), C]`` array aligned with ``ids``.
            They choose the pairs and the single- / multi-label groups.
        threshold (float, optional): Background score of the seeds; required for CAM files, not allowed for
            masks.
        top_k (int): How many of the most co-occurring pairs to report. Defaults to 1.
        class_names (Sequence[str], optional): ``C + 1`` names, background first; default ``'0'..'C'``.
        progress (bool): Show mmengine's progress bar (on stderr). Defaults to False.
        ignore_index (int): Ignored ground truth / unlabelled prediction value. Defaults to 255.
        gt_suffix (str): Suffix of the ground-truth files. Defaults to '.png'.

    Returns:
        dict: :func:`summarize_cooccurrence_confusion`'s report (percentages) plus ``input`` (``'cam'`` or
        ``'mask'``), ``threshold``, ``num_images``, ``classes`` and ``confusion`` (the summed ``int64``
        ``[N, N + 1]`` matrices: ``pairs`` ``[P, N, N + 1]``, ``single``, ``multi``).

    Raises:
        FileNotFoundError: The folder, a prediction of ``ids`` or a ground-truth mask is missing (names them).
        ValueError: Labels missing or of another length than the class names, CAM keys or mask values outside
            the labels' classes, a ground truth of another size, or a threshold missing / not applicable.
    """
    ids = list(ids)
    if not ids:
        raise ValueError('no image ids to evaluate')
    label_mat = _labels_matrix(labels, ids)
    num_fg = label_mat.shape[1]
    n = num_fg + 1
    names = [str(i) for i in range(n)] if class_names is None else list(class_names)
    if len(names) != n:
        raise ValueError(f'{len(names)} class names given but the labels have {num_fg} foreground classes: give '
                         f'{n} names, background first')
    kind = detect_prediction_kind(pred_dir, ids)
    if kind == 'cam' and threshold is None:
        raise ValueError(f'{pred_dir} holds CAM files: give the background score (threshold) of the seeds, '
                         'e.g. the best one of tools/analysis/eval_seeds.py')
    if kind == 'mask' and threshold is not None:
        raise ValueError(f'{pred_dir} holds mask PNGs: a threshold applies to CAM files only')
    if kind == 'cam':  # CAMs of another dataset or labels: refused before any is read
        check_cam_folder(pred_dir, ids, num_fg, dict(zip(ids, label_mat)))
    gt_paths = [osp.join(gt_dir, i + gt_suffix) for i in ids]
    missing_gt = [p for p in gt_paths if not osp.isfile(p)]
    if missing_gt:
        raise FileNotFoundError(f'{len(missing_gt)} of {len(ids)} ids of the split have no ground truth in '
                                f'{gt_dir}: {_shown(missing_gt, len(missing_gt))}')
    pairs = top_cooccurring_pairs(label_mat, top_k)
    totals = empty_confusions(n, len(pairs))
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(ids), file=sys.stderr)
    for img_id, label, gt_path in zip(ids, label_mat, gt_paths):
        path = cam_path(pred_dir, img_id) if kind == 'cam' else osp.join(pred_dir, img_id + '.png')
        pred = _read_prediction(kind, path, num_fg, threshold, ignore_index)
        gt = read_png(gt_path)
        if gt.shape != pred.shape:
            raise ValueError(f'ground truth {gt_path} has size {gt.shape} but {path} has size {pred.shape}')
        try:
            conf = confusion_matrix(gt, pred, n, ignore_index)
        except ValueError as e:
            raise ValueError(f'{gt_path} / {path}: {e}') from e
        accumulate_confusions(totals, conf, label, [(a, b) for a, b, _ in pairs])
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stderr.write('\n')
    result = summarize_cooccurrence_confusion(totals, pairs, names)
    result.update(input=kind, threshold=None if threshold is None else float(threshold), num_images=len(ids),
                  classes=names, confusion=dict(pairs=totals['pairs'], single=totals['single'],
                                                multi=totals['multi']))
    return result


# ----------------------------------------------------------------------------------------------- report
def _pct(v: float) -> str:
    return 'n/a' if v is None or math.isnan(v) else f'{v:.2f}'


def format_cooccurrence_confusion(result: Dict) -> str:
    """A text report: the pair table (``a -> b %``, ``b -> a %``, images) and the per-class IoU table
    (single- vs multi-label images)."""
    from prettytable import PrettyTable
    pairs = PrettyTable()
    pairs.field_names = ['Pair (a / b)', 'a -> b %', 'b -> a %', 'images']
    for p in result['pairs']:
        pairs.add_row([f'{p["a"]} / {p["b"]}', _pct(p['a_to_b']), _pct(p['b_to_a']), p['images']])
    iou = PrettyTable()
    iou.field_names = ['Class', 'IoU single-label', 'IoU multi-label']
    single, multi = result['per_class_iou']['single'], result['per_class_iou']['multi']
    for name in single:
        iou.add_row([name, _pct(single[name]), _pct(multi[name])])
    iou.add_row(['mIoU', _pct(result['miou']['single']), _pct(result['miou']['multi'])])
    source = f'CAM seeds at t={result["threshold"]:.2f}' if result['input'] == 'cam' else 'masks'
    head = (f'{result["num_images"]} images ({source}): {result["num_single"]} single-label, '
            f'{result["num_multi"]} multi-label')
    pair_text = pairs.get_string() if result['pairs'] else '(no two classes share an image label)'
    return (f'{head}\nmost co-occurring pairs, over the images whose label holds both: share of the ground-truth '
            f'pixels of one class predicted as the other\n{pair_text}\nper-class IoU (%)\n{iou.get_string()}')


def _clean(obj):
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def dump_cooccurrence_confusion(path: str, result: Dict) -> None:
    """Writes the report as JSON to ``path``, atomically (NaN as null; the summed confusions as lists)."""
    text = json.dumps(_clean(result), indent=2)
    atomic_write(path, lambda f: f.write(text.encode('utf-8')))
