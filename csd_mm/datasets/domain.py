"""Source / target domain split of CSD (Yang et al., "Cross-domain Semantic Decoupling for
Weakly-Supervised Semantic Segmentation", BMVC 2023, Sec. 3.1).

The source domain S holds the training images with exactly one foreground class (``|y| = 1``), the target
domain T those with two or more (``|y| >= 2``). Images without any label belong to neither.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

__all__ = ['DomainSplit', 'split_domains', 'domain_split', 'class_counts', 'label_cardinality_histogram',
           'source_class_of']


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f'labels must be a [N, C] multi-hot array, got shape {labels.shape}')
    return labels > 0


def split_domains(labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Splits images into the source (single-label) and target (multi-label) domains.

    Args:
        labels (np.ndarray): ``[N, C]`` multi-hot image-level labels (any positive value counts as present).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(source_idx, target_idx)``, ascending ``int64`` row indices with
        ``|y| = 1`` and ``|y| >= 2`` respectively.
    """
    card = _check_labels(labels).sum(axis=1)
    return np.flatnonzero(card == 1).astype(np.int64), np.flatnonzero(card >= 2).astype(np.int64)


def class_counts(labels: np.ndarray, idx: Optional[np.ndarray] = None) -> np.ndarray:
    """Number of images (among rows ``idx``; all rows if None) whose label contains each class.

    Args:
        labels (np.ndarray): ``[N, C]`` multi-hot labels.
        idx (np.ndarray, optional): Row indices to count over.

    Returns:
        np.ndarray: ``int64 [C]`` counts.
    """
    present = _check_labels(labels)
    if idx is not None:
        present = present[np.asarray(idx, dtype=np.int64)]
    return present.sum(axis=0).astype(np.int64)


def label_cardinality_histogram(labels: np.ndarray, idx: Optional[np.ndarray] = None) -> Dict[int, int]:
    """Histogram of the number of classes per image: ``{|y|: number of images}`` (only non-zero bins).

    Args:
        labels (np.ndarray): ``[N, C]`` multi-hot labels.
        idx (np.ndarray, optional): Row indices to count over.

    Returns:
        dict[int, int]: Sorted by cardinality.
    """
    present = _check_labels(labels)
    if idx is not None:
        present = present[np.asarray(idx, dtype=np.int64)]
    card = present.sum(axis=1)
    values, counts = np.unique(card, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def source_class_of(labels: np.ndarray, source_idx: np.ndarray) -> np.ndarray:
    """The one class of each source image.

    Args:
        labels (np.ndarray): ``[N, C]`` multi-hot labels.
        source_idx (np.ndarray): Rows with exactly one class.

    Returns:
        np.ndarray: ``int64 [len(source_idx)]`` 0-based foreground class ids.

    Raises:
        ValueError: A listed row does not have exactly one class.
    """
    present = _check_labels(labels)[np.asarray(source_idx, dtype=np.int64)]
    card = present.sum(axis=1)
    if np.any(card != 1):
        bad = np.asarray(source_idx)[card != 1][:5].tolist()
        raise ValueError(f'rows {bad} are not single-label images')
    return present.argmax(axis=1).astype(np.int64)


@dataclass
class DomainSplit:
    """The domain split of a label matrix with its counts.

    Attributes:
        source_idx (np.ndarray): Rows with ``|y| = 1`` (source domain S).
        target_idx (np.ndarray): Rows with ``|y| >= 2`` (target domain T).
        unlabeled_idx (np.ndarray): Rows with ``|y| = 0`` (in neither domain).
        source_class (np.ndarray): The class of each source row.
        single_label_counts (np.ndarray): ``int64 [C]`` source images per class.
        multi_label_counts (np.ndarray): ``int64 [C]`` target images containing each class.
        target_histogram (dict[int, int]): ``{|y|: count}`` over T.
    """
    source_idx: np.ndarray
    target_idx: np.ndarray
    unlabeled_idx: np.ndarray
    source_class: np.ndarray
    single_label_counts: np.ndarray
    multi_label_counts: np.ndarray
    target_histogram: Dict[int, int] = field(default_factory=dict)

    @property
    def num_source(self) -> int:
        return int(len(self.source_idx))

    @property
    def num_target(self) -> int:
        return int(len(self.target_idx))


def domain_split(labels: np.ndarray) -> DomainSplit:
    """Computes :func:`split_domains` and the per-domain counts in one go.

    Args:
        labels (np.ndarray): ``[N, C]`` multi-hot labels.

    Returns:
        DomainSplit: Indices and counts.
    """
    present = _check_labels(labels)
    source_idx, target_idx = split_domains(present)
    unlabeled_idx = np.flatnonzero(present.sum(axis=1) == 0).astype(np.int64)
    return DomainSplit(
        source_idx=source_idx,
        target_idx=target_idx,
        unlabeled_idx=unlabeled_idx,
        source_class=source_class_of(present, source_idx),
        single_label_counts=class_counts(present, source_idx),
        multi_label_counts=class_counts(present, target_idx),
        target_histogram=label_cardinality_histogram(present, target_idx))
