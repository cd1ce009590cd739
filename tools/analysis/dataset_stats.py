"""Prints the CSD domain split, per-class counts and the co-occurrence matrix of a labelled split.

Usage::

    python tools/analysis/dataset_stats.py LABELS SPLIT [--classes C1 C2 ...] [--probs] [--no-self]

``LABELS`` is a ``cls_labels.npy`` (image id -> multi-hot vector), ``SPLIT`` a file with one image id per
line. Class names default to the 20 VOC classes when C = 20, the 80 COCO classes when C = 80, else to
``class_<i>``. The report ends with the most co-occurring class pairs (``--top-pairs``) and the classes without
any single-label image (COR never pastes them); the full co-occurrence matrix is printed for at most 30 classes
unless ``--matrix`` asks for it.
Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation", BMVC 2023.
"""
import argparse
import sys
from typing import List, Optional, Sequence

import numpy as np

from csd_mm.datasets.cooccurrence import cooccurrence_counts, cooccurrence_probs
from csd_mm.datasets.domain import domain_split
from csd_mm.evaluation.functional.cooccurrence_confusion import top_cooccurring_pairs
from csd_mm.datasets.coco import COCO_CLASSES
from csd_mm.datasets.labels import VOC_CLASSES, LabelFileError, labels_for_split, load_cls_labels, read_split


def format_matrix(matrix: np.ndarray, names: Sequence[str], probs: bool = False) -> str:
    """Formats a ``[C, C]`` matrix with row names and 5-character column headers."""
    width = max(len(n) for n in names)
    cell = 6
    header = ' ' * width + ''.join(f'{n[:cell - 1]:>{cell}}' for n in names)
    rows = [header]
    for name, row in zip(names, matrix):
        cells = ''.join((f'{v:{cell}.2f}' if probs else f'{int(v):{cell}d}') for v in row)
        rows.append(f'{name:<{width}}{cells}')
    return '\n'.join(rows)


def format_stats(labels: np.ndarray, names: Sequence[str], show_probs: bool = False,
                 include_self: bool = True, top_pairs: int = 10, show_matrix: Optional[bool] = None) -> str:
    """Builds the whole report for a ``[N, C]`` label matrix (``show_matrix`` None: only for C <= 30)."""
    split = domain_split(labels)
    total = (labels > 0).sum(axis=0)
    lines = [
        f'images: {len(labels):,}   classes: {labels.shape[1]}',
        f'source domain S (|y| = 1): {split.num_source:,}',
        f'target domain T (|y| >= 2): {split.num_target:,}',
        f'unlabelled (|y| = 0): {len(split.unlabeled_idx):,}',
        'target label-count histogram: ' +
        ', '.join(f'{k}: {v:,}' for k, v in split.target_histogram.items()),
        '',
        'per-class image counts:',
    ]
    width = max(len(n) for n in names + ['class'])
    lines.append(f'{"class":<{width}}  {"total":>7}  {"single":>7}  {"multi":>7}')
    for name, t, s, m in zip(names, total, split.single_label_counts, split.multi_label_counts):
        lines.append(f'{name:<{width}}  {int(t):>7,}  {int(s):>7,}  {int(m):>7,}')
    num = len(labels)
    lines += ['', f'single-label images: {split.num_source:,} ({100 * split.num_source / max(num, 1):.1f} %), '
              f'multi-label images: {split.num_target:,} ({100 * split.num_target / max(num, 1):.1f} %)']
    pairs = top_cooccurring_pairs(labels, top_k=top_pairs) if top_pairs > 0 else []
    if pairs:
        lines.append(f'top {len(pairs)} co-occurring pairs (images with both):')
        lines += [f'  {names[a]} + {names[b]}: {n:,}' for a, b, n in pairs]
    present_no_source = [n for n, t, s in zip(names, total, split.single_label_counts) if t > 0 and s == 0]
    absent = [n for n, t in zip(names, total) if t == 0]
    lines.append(f'classes present but without a single-label image (COR cannot paste them): '
                 f'{len(present_no_source)}' + (f' ({", ".join(present_no_source)})' if present_no_source else ''))
    if absent:
        lines.append(f'classes absent from the split: {len(absent)}')
    if show_matrix is None:
        show_matrix = labels.shape[1] <= 30
    if not show_matrix:
        return '\n'.join(lines)
    counts = cooccurrence_counts(labels, include_self=include_self)
    diag = 'single-label counts' if include_self else '0'
    lines += ['', f'co-occurrence counts N (diagonal = {diag}):', format_matrix(counts, names)]
    if show_probs:
        lines += ['', 'co-occurrence probabilities P = N / row sum (CSD Eq. 1):',
                  format_matrix(cooccurrence_probs(counts), names, probs=True)]
    return '\n'.join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('labels', help='cls_labels.npy (image id -> multi-hot vector)')
    parser.add_argument('split', help='split file, one image id per line')
    parser.add_argument('--classes', nargs='+', help='foreground class names (default: VOC when C = 20)')
    parser.add_argument('--probs', action='store_true', help='also print the row-normalised P')
    parser.add_argument('--no-self', action='store_true', help='zero diagonal (include_self=False)')
    parser.add_argument('--top-pairs', type=int, default=10, help='most co-occurring pairs to list')
    parser.add_argument('--matrix', action='store_true', help='print the C x C matrix even for C > 30')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        labels = load_cls_labels(args.labels)
        ids = read_split(args.split)
        num_classes = len(next(iter(labels.values()))) if labels else 0
        if args.classes:
            names = list(args.classes)
            if len(names) != num_classes:
                raise LabelFileError(f'{args.labels} has {num_classes} classes, --classes names {len(names)}')
        elif num_classes == len(VOC_CLASSES):
            names = list(VOC_CLASSES)
        elif num_classes == len(COCO_CLASSES):
            names = list(COCO_CLASSES)
        else:
            names = [f'class_{i}' for i in range(num_classes)]
        matrix = labels_for_split(labels, ids, num_classes, label_file=args.labels)
    except LabelFileError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'labels: {args.labels}\nsplit: {args.split}')
    print(format_stats(matrix, names, show_probs=args.probs, include_self=not args.no_self,
                       top_pairs=args.top_pairs, show_matrix=True if args.matrix or args.probs else None))
    return 0


if __name__ == '__main__':
    sys.exit(main())
