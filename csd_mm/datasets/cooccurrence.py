"""Co-occurrence oriented resampling (COR) of CSD (Yang et al., "Cross-domain Semantic Decoupling for
Weakly-Supervised Semantic Segmentation", BMVC 2023, Sec. 3.2, Eq. 1).

For a target image with classes ``{c_1..c_n}`` COR draws the class ``j`` of the source image to paste with
probability proportional to ``sum_k P[c_k, j]``, where ``P`` is the row-normalised co-occurrence matrix of
the training labels, restricted to classes that have single-label (source) images; the source image is then
drawn uniformly among the single-label images of ``j``. ``sampling='uniform'`` (the paper's "copy-paste
without resampling" ablation) draws the source image uniformly from all of S.

All functions are pure numpy; :class:`CORSampler` only keeps the arrays and a random generator.
"""
import logging
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log

from .domain import source_class_of, split_domains

__all__ = ['cooccurrence_counts', 'cooccurrence_probs', 'target_class_distribution', 'CORSampler']

RngLike = Union[None, int, np.random.Generator]


def cooccurrence_counts(labels: np.ndarray, include_self: bool = True) -> np.ndarray:
    """Co-occurrence counts ``N`` of CSD Sec. 3.2.

    ``N[i, j]`` (``i != j``) is the number of images whose label contains both ``i`` and ``j``. The diagonal
    ``N[i, i]`` is the number of single-label images of class ``i`` (``include_self=True``, the paper's
    reading: classes with more single-label samples are drawn more often) or 0.

    Args:
        labels (np.ndarray): ``[N_img, C]`` multi-hot labels (any positive value counts as present).
        include_self (bool): Put the single-label counts on the diagonal. Defaults to True.

    Returns:
        np.ndarray: ``int64 [C, C]`` symmetric counts.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f'labels must be a [N, C] multi-hot array, got shape {labels.shape}')
    y = (labels > 0).astype(np.int64)
    counts = y.T @ y
    single = y[y.sum(axis=1) == 1].sum(axis=0)
    np.fill_diagonal(counts, single if include_self else 0)
    return counts


def cooccurrence_probs(counts: np.ndarray) -> np.ndarray:
    """Row-normalised co-occurrence probabilities, CSD Eq. (1): ``P[i, j] = N[i, j] / sum_k N[i, k]``.

    Args:
        counts (np.ndarray): ``[C, C]`` non-negative counts.

    Returns:
        np.ndarray: ``float64 [C, C]``; rows whose counts sum to 0 stay 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f'counts must be a square [C, C] matrix, got shape {counts.shape}')
    if np.any(counts < 0):
        raise ValueError('co-occurrence counts must be non-negative')
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def target_class_distribution(probs: np.ndarray, target_label: np.ndarray,
                              has_source: np.ndarray) -> np.ndarray:
    """COR distribution over the class of the source image to paste into a target image.

    Weight of class ``j`` = ``sum_k P[c_k, j]`` over the target's classes ``c_k``, set to 0 for classes
    without a source image and renormalised; if every remaining weight is 0, uniform over the classes that
    have a source image.

    Args:
        probs (np.ndarray): ``[C, C]`` row-normalised co-occurrence matrix (:func:`cooccurrence_probs`).
        target_label (np.ndarray): ``[C]`` multi-hot label of the target image.
        has_source (np.ndarray): ``[C]`` bool, whether class ``j`` has at least one single-label image.

    Returns:
        np.ndarray: ``float64 [C]`` probabilities summing to 1.

    Raises:
        ValueError: No class has a source image, or the shapes disagree.
    """
    probs = np.asarray(probs, dtype=np.float64)
    target = np.asarray(target_label).reshape(-1) > 0
    has_source = np.asarray(has_source, dtype=bool).reshape(-1)
    num_classes = probs.shape[0]
    if probs.shape != (num_classes, num_classes) or target.shape[0] != num_classes or \
            has_source.shape[0] != num_classes:
        raise ValueError(f'shape mismatch: probs {probs.shape}, target_label {target.shape}, '
                         f'has_source {has_source.shape}')
    if not has_source.any():
        raise ValueError('no class has a single-label (source) image; COR cannot draw a source image')
    weights = probs[target].sum(axis=0) * has_source
    total = weights.sum()
    if total <= 0:
        return has_source / has_source.sum()
    return weights / total


def _make_rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


class CORSampler:
    """Draws the source image to pair with a target image (CSD COR, or uniform over S).

    Args:
        source_classes (np.ndarray): The class of each source image: ``int [M]`` class ids, or an
            ``[M, C]`` multi-hot matrix with exactly one class per row.
        probs (np.ndarray): ``[C, C]`` co-occurrence probabilities (:func:`cooccurrence_probs`).
        rng (None | int | np.random.Generator): Random generator or seed.
        sampling (str): ``'cor'`` (default) or ``'uniform'`` (uniform over all source images).
        source_ids (Sequence[int], optional): What :meth:`sample` returns for source image ``m`` (e.g. its
            dataset index); defaults to ``m``, the position in ``source_classes``.
        class_names (Sequence[str], optional): Used in error messages.
    """

    def __init__(self,
                 source_classes: np.ndarray,
                 probs: np.ndarray,
                 rng: RngLike = None,
                 sampling: str = 'cor',
                 source_ids: Optional[Sequence[int]] = None,
                 class_names: Optional[Sequence[str]] = None) -> None:
        if sampling not in ('cor', 'uniform'):
            raise ValueError(f"sampling must be 'cor' or 'uniform', got {sampling!r}")
        self.probs = np.asarray(probs, dtype=np.float64)
        num_classes = self.probs.shape[0]
        if self.probs.ndim != 2 or self.probs.shape[1] != num_classes:
            raise ValueError(f'probs must be [C, C], got shape {self.probs.shape}')
        source_classes = np.asarray(source_classes)
        if source_classes.ndim == 2:
            if source_classes.shape[1] != num_classes:
                raise ValueError(f'source labels have {source_classes.shape[1]} classes, probs has '
                                 f'{num_classes}')
            source_classes = source_class_of(source_classes, np.arange(len(source_classes)))
        source_classes = source_classes.astype(np.int64).reshape(-1)
        if source_classes.size and (source_classes.min() < 0 or source_classes.max() >= num_classes):
            raise ValueError(f'source class ids must lie in 0..{num_classes - 1}')
        self.num_classes = num_classes
        self.source_classes = source_classes
        self.source_ids = np.arange(len(source_classes)) if source_ids is None else \
            np.asarray(source_ids, dtype=np.int64)
        if len(self.source_ids) != len(source_classes):
            raise ValueError(f'{len(self.source_ids)} source_ids for {len(source_classes)} source images')
        self.sampling = sampling
        self.class_names = list(class_names) if class_names is not None else None
        self.rng = _make_rng(rng)
        # positions of the source images of each class, grouped (stable order)
        order = np.argsort(source_classes, kind='stable')
        bounds = np.searchsorted(source_classes[order], np.arange(num_classes + 1))
        self._by_class = [order[bounds[c]:bounds[c + 1]] for c in range(num_classes)]
        self.has_source = np.array([len(p) > 0 for p in self._by_class], dtype=bool)
        if len(source_classes) and not self.has_source.all():
            # said once, here: sampling never draws these classes (target_class_distribution zeroes them)
            missing = ', '.join(self._name(c) for c in np.flatnonzero(~self.has_source))
            print_log(f'CORSampler: no single-label (source) image of class(es) {missing}; they are never pasted',
                      logger='current', level=logging.WARNING)

    @classmethod
    def from_labels(cls,
                    labels: np.ndarray,
                    include_self: bool = True,
                    rng: RngLike = None,
                    sampling: str = 'cor',
                    class_names: Optional[Sequence[str]] = None) -> 'CORSampler':
        """Builds the sampler from the ``[N, C]`` training labels; :meth:`sample` returns row indices.

        Args:
            labels (np.ndarray): ``[N, C]`` multi-hot labels of all training images (S and T).
            include_self (bool): See :func:`cooccurrence_counts`.
            rng, sampling, class_names: As in the constructor.
        """
        source_idx, _ = split_domains(labels)
        probs = cooccurrence_probs(cooccurrence_counts(labels, include_self=include_self))
        return cls(source_class_of(labels, source_idx), probs, rng=rng, sampling=sampling,
                   source_ids=source_idx, class_names=class_names)

    def _name(self, c: int) -> str:
        if self.class_names is not None and 0 <= c < len(self.class_names):
            return f'{c} ({self.class_names[c]})'
        return str(c)

    def class_distribution(self, target_label: np.ndarray) -> np.ndarray:
        """The distribution of the pasted class for ``target_label`` (uniform mode: class shares of S)."""
        if self.sampling == 'uniform':
            if not len(self.source_classes):
                raise ValueError('no source (single-label) image to sample from')
            counts = np.bincount(self.source_classes, minlength=self.num_classes).astype(np.float64)
            return counts / counts.sum()
        return target_class_distribution(self.probs, target_label, self.has_source)

    def sample_from_class(self, cls_id: int) -> int:
        """Draws one source image of class ``cls_id`` uniformly; returns its source id.

        Raises:
            ValueError: The class has no single-label image.
        """
        cls_id = int(cls_id)
        if not 0 <= cls_id < self.num_classes:
            raise ValueError(f'class {cls_id} is outside 0..{self.num_classes - 1}')
        positions = self._by_class[cls_id]
        if len(positions) == 0:
            raise ValueError(f'class {self._name(cls_id)} has no single-label (source) image to sample')
        return int(self.source_ids[positions[self.rng.integers(len(positions))]])

    def sample(self, target_label: np.ndarray) -> Tuple[int, int]:
        """Draws ``(class, source id)`` for a target image with multi-hot label ``target_label``."""
        if self.sampling == 'uniform':
            if not len(self.source_classes):
                raise ValueError('no source (single-label) image to sample from')
            m = int(self.rng.integers(len(self.source_classes)))
            return int(self.source_classes[m]), int(self.source_ids[m])
        dist = self.class_distribution(target_label)
        cls_id = int(self.rng.choice(self.num_classes, p=dist))
        return cls_id, self.sample_from_class(cls_id)
