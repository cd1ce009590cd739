"""Seeds from CAMs and the background-threshold sweep, in pure numpy.

The seed of a pixel for a constant background score ``t`` is the argmax over ``[t, cam_1 .. cam_K]`` with ties
going to background (the seed protocol of IRN, Ahn et al., CVPR 2019, and MCTformer, Xu et al., CVPR 2022, used
by Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation", BMVC 2023 to
report seed mIoU on VOC train for ``t`` in 0.00 .. 0.59).

A pixel is foreground for ``t`` iff ``m = max_k cam_k > t`` and then takes the class ``a = argmax_k cam_k``
(first of equal maxima, i.e. the smallest key), which does not depend on ``t``. So one pass suffices for all
thresholds: with ``n = #{thresholds < m}`` (:func:`numpy.searchsorted`), the pixel is foreground exactly for the
first ``n`` thresholds of an ascending list. One histogram over ``(n, gt, a)`` and a reverse cumulative sum
over ``n`` give the foreground counts of every threshold; the remaining pixels of each gt class are background.

All comparisons with ``t`` are made in float64, on the exact values of the CAM (float16/32 values are exactly
representable in float64), so :func:`seed_from_cam` and :func:`sweep_confusion` agree bit for bit.

Confusion matrices are indexed ``[gt, pred]`` (rows: ground truth), classes ``0 .. num_classes - 1`` with 0 the
background; pixels whose ground truth is ``ignore_index`` are not counted.
"""
import warnings
from typing import Dict, Sequence, Union

import numpy as np

__all__ = ['default_thresholds', 'count_below', 'seed_from_cam', 'sweep_confusion', 'confusion_to_iou',
           'summarize_sweep']

ArrayLike = Union[np.ndarray, Sequence[float]]


def default_thresholds() -> np.ndarray:
    """The background scores of the standard sweep: 0.00, 0.01, ..., 0.59 (60 values, each exactly ``i / 100``
    in float64)."""
    return np.arange(60) / 100


def _check_cam_keys(cam: np.ndarray, keys: np.ndarray) -> None:
    if cam.ndim != 3:
        raise ValueError(f'cam must have shape (K, H, W), got shape {cam.shape}')
    if keys.ndim != 1 or keys.shape[0] != cam.shape[0]:
        raise ValueError(f'keys must have shape [K] = [{cam.shape[0]}] to match cam {cam.shape}, '
                         f'got shape {keys.shape}')
    if keys.size and not np.issubdtype(keys.dtype, np.integer):
        raise ValueError(f'keys must be integers, got dtype {keys.dtype}')
    if keys.size and (keys.min() < 0 or keys.max() > 253):
        raise ValueError(f'keys must lie in [0, 253] (mask values keys + 1 in [1, 254]), got {keys.tolist()}')


def _max_argmax(cam: np.ndarray) -> tuple:
    """Per-pixel max (the dtype of ``cam``) and argmax (first of equal maxima) over the K maps; K must be > 0.

    ``np.max(axis=0)`` is vectorised but ``np.argmax(axis=0)`` is not (ten times slower on a VOC image), so the
    argmax is recovered from the max: the maps are visited from the last to the first and each pixel takes
    the index of every map equal to its max, so the first of equal maxima is the one that stays. NaN propagates
    through the max (as it is the argmax's pick), so checking the max catches it.
    """
    m = cam.max(axis=0)
    if not np.all(np.isfinite(m)):
        raise ValueError('cam contains NaN or inf values')
    a = np.zeros(m.shape, dtype=np.intp)
    for k in range(cam.shape[0] - 1, 0, -1):
        np.copyto(a, k, where=cam[k] == m)
    if cam.shape[0] > 1:
        np.copyto(a, 0, where=cam[0] == m)
    return m, a


_LUT_SHIFT = 13  # the table has one entry per 2 ** 13 consecutive float32 values: 2 ** 19 entries
_LUT_MIN_PIXELS = 4096  # below this, building the table (once per threshold list and process) does not pay
_LUTS: Dict[bytes, np.ndarray] = {}


def _monotone_key(bits: np.ndarray) -> np.ndarray:
    """Maps float32 bit patterns (uint32) to uint32 keys with the order of the float values."""
    return np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))


def _threshold_lut(t: np.ndarray) -> np.ndarray:
    """``lut[key >> 13]`` = number of thresholds strictly below every float32 of that bucket of monotone keys,
    or -1 where a threshold falls inside the bucket (those pixels are searched exactly)."""
    lut = _LUTS.get(t.tobytes())
    if lut is None:
        buckets = np.arange(2 ** (32 - _LUT_SHIFT), dtype=np.uint32) << np.uint32(_LUT_SHIFT)
        ends = []
        for key in (buckets, buckets | np.uint32(2 ** _LUT_SHIFT - 1)):
            # the inverse of _monotone_key: keys with the top bit set are non-negative floats
            bits = np.where(key & np.uint32(0x80000000), key & np.uint32(0x7FFFFFFF), ~key)
            with np.errstate(invalid='ignore'):
                ends.append(np.searchsorted(t, bits.view(np.float32).astype(np.float64), side='left'))
        lut = np.where(ends[0] == ends[1], ends[0], -1).astype(np.intp)
        _LUTS[t.tobytes()] = lut
    return lut


def count_below(t: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Number of thresholds strictly below each value: ``np.searchsorted(t, m, side='left')``, exactly.

    For large float32 inputs a table over the top 19 bits of the (order-preserving) bit pattern answers all
    pixels whose bucket holds no threshold, which is almost all of them, and only the rest are searched:
    several times faster than the binary search of every pixel, and the comparisons stay the float64 ones.

    Args:
        t (np.ndarray): Ascending float64 thresholds ``[T]``.
        m (np.ndarray): Finite values (any float dtype).

    Returns:
        np.ndarray: intp counts, the shape of ``m``.
    """
    if m.dtype != np.float32 or m.size < _LUT_MIN_PIXELS:
        return np.searchsorted(t, m.astype(np.float64, copy=False), side='left')
    k = _threshold_lut(t)[_monotone_key(m.view(np.uint32)) >> np.uint32(_LUT_SHIFT)]
    inside = k < 0
    if inside.any():
        k[inside] = np.searchsorted(t, m[inside].astype(np.float64), side='left')
    return k


def _check_thresholds(thresholds: ArrayLike) -> np.ndarray:
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f'thresholds must be a non-empty 1-D sequence, got shape {t.shape}')
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
        raise ValueError(f'thresholds must be finite and ascending, got {t.tolist()}')
    return t


def seed_from_cam(cam: np.ndarray, keys: np.ndarray, t: float) -> np.ndarray:
    """The seed label map of one image for background score ``t``.

    Args:
        cam (np.ndarray): ``(K, H, W)`` class activation maps; K may be 0 (all background).
        keys (np.ndarray): ``[K]`` 0-based foreground class ids of the maps.
        t (float): Constant background score.

    Returns:
        np.ndarray: ``uint8 (H, W)`` label map: 0 where no map exceeds ``t`` (ties go to background),
        otherwise ``keys[argmax_k cam_k] + 1``.
    """
    cam = np.asarray(cam)
    keys = np.asarray(keys)
    if keys.size == 0:
        keys = keys.reshape(-1).astype(np.int64)  # an empty list becomes float64 in numpy
    _check_cam_keys(cam, keys)
    seed = np.zeros(cam.shape[1:], dtype=np.uint8)
    if cam.shape[0] == 0:
        return seed
    m, a = _max_argmax(cam)
    fg = m.astype(np.float64) > float(t)
    seed[fg] = (keys.astype(np.int64)[a[fg]] + 1).astype(np.uint8)
    return seed


def sweep_confusion(cam: np.ndarray,
                    keys: np.ndarray,
                    gt: np.ndarray,
                    num_classes: int,
                    thresholds: ArrayLike,
                    ignore_index: int = 255) -> np.ndarray:
    """Confusion matrices of the seeds of one image for every threshold, in one pass over the pixels.

    Args:
        cam (np.ndarray): ``(K, H, W)`` class activation maps; K may be 0.
        keys (np.ndarray): ``[K]`` 0-based foreground class ids (mask values ``keys + 1``).
        gt (np.ndarray): ``(H, W)`` ground-truth mask with values in ``[0, num_classes)`` or ``ignore_index``.
        num_classes (int): Number of classes including background (21 for VOC).
        thresholds (array-like): Ascending background scores ``[T]``.
        ignore_index (int): Ground-truth value of pixels that are not counted. Defaults to 255.

    Returns:
        np.ndarray: ``int64 [T, num_classes, num_classes]``, ``[i, g, p]`` = number of pixels with ground
        truth ``g`` and seed ``p`` at ``thresholds[i]``; equal to the confusion matrix of
        :func:`seed_from_cam` at each threshold.
    """
    cam = np.asarray(cam)
    keys = np.asarray(keys)
    if keys.size == 0:
        keys = keys.reshape(-1).astype(np.int64)  # an empty list becomes float64 in numpy
    gt = np.asarray(gt)
    t = _check_thresholds(thresholds)
    _check_cam_keys(cam, keys)
    n = int(num_classes)
    if gt.shape != cam.shape[1:]:
        raise ValueError(f'gt has shape {gt.shape} but cam has spatial shape {cam.shape[1:]}')
    if keys.size and keys.max() + 1 >= n:
        raise ValueError(f'keys {keys.tolist()} give mask values >= num_classes ({n})')
    valid = gt != ignore_index
    all_valid = bool(valid.all())  # the usual case: no boolean gathers (each a copy of every pixel)
    g = (gt.reshape(-1) if all_valid else gt[valid]).astype(np.int64)
    if g.size and (g.min() < 0 or g.max() >= n):
        raise ValueError(f'gt has values outside [0, {n}) other than ignore_index {ignore_index}: '
                         f'{np.unique(g[(g < 0) | (g >= n)]).tolist()}')
    num_t = t.size
    conf = np.zeros((num_t, n, n), dtype=np.int64)
    if cam.shape[0] > 0 and g.size:
        m, a = _max_argmax(cam)
        m, a = (m.reshape(-1), a.reshape(-1)) if all_valid else (m[valid], a[valid])
        # k = number of thresholds strictly below m: foreground exactly for thresholds[:k].
        k = count_below(t, m)
        p = keys.astype(np.int64)[a] + 1
        hist = np.bincount((k * n + g) * n + p, minlength=(num_t + 1) * n * n).reshape(num_t + 1, n, n)
        # fg[i] = sum_{k > i} hist[k]: reverse cumulative sum over k, shifted by one.
        conf[:] = np.cumsum(hist[::-1], axis=0)[::-1][1:]
        gt_count = hist.sum(axis=(0, 2))  # every counted pixel is in exactly one bin
    else:
        gt_count = np.bincount(g, minlength=n)
    conf[:, :, 0] += gt_count[None, :] - conf.sum(axis=2)
    return conf


def confusion_to_iou(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU from confusion matrices ``[..., N, N]`` (rows: gt, columns: prediction).

    IoU = TP / (gt + pred - TP); a class absent from both ground truth and prediction gets NaN (0/0), which
    ``np.nanmean`` excludes from the mean, as mmseg's ``IoUMetric`` does.

    Returns:
        np.ndarray: float64 ``[..., N]``.
    """
    conf = np.asarray(conf)
    if conf.ndim < 2 or conf.shape[-1] != conf.shape[-2]:
        raise ValueError(f'conf must have shape [..., N, N], got {conf.shape}')
    tp = np.diagonal(conf, axis1=-2, axis2=-1).astype(np.float64)
    union = conf.sum(axis=-1) + conf.sum(axis=-2) - tp
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def summarize_sweep(conf: np.ndarray, thresholds: ArrayLike) -> Dict:
    """Picks the best background score of a sweep.

    Args:
        conf (np.ndarray): ``[T, N, N]`` confusion matrices (from :func:`sweep_confusion`, summed over images).
        thresholds (array-like): The ``[T]`` background scores.

    Returns:
        dict: ``best_threshold`` (float), ``best_index`` (int), ``best_miou`` (float in [0, 1]),
        ``per_class_iou`` (float64 ``[N]`` at the best threshold, NaN for absent classes), ``miou``
        (float64 ``[T]``) and ``curve`` (list of ``(t, miou)`` tuples). The first of equal best mIoUs wins.
    """
    t = _check_thresholds(thresholds)
    conf = np.asarray(conf)
    if conf.ndim != 3 or conf.shape[0] != t.size:
        raise ValueError(f'conf must have shape [T={t.size}, N, N], got {conf.shape}')
    iou = confusion_to_iou(conf)
    if np.all(np.isnan(iou)):
        raise ValueError('the confusion matrices count no pixel: nothing to evaluate')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN rows cannot occur once one pixel counts
        miou = np.nanmean(iou, axis=1)
    best = int(np.argmax(miou))
    return dict(
        best_threshold=float(t[best]),
        best_index=best,
        best_miou=float(miou[best]),
        per_class_iou=iou[best],
        miou=miou,
        curve=[(float(ti), float(mi)) for ti, mi in zip(t, miou)])
