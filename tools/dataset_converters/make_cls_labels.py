"""Writes a ``cls_labels.npy`` (id -> multi-hot float32[C], the WSSS community's format) for split files.

Labels come from VOC ``Annotations`` XML (every object counts, ``difficult`` ones included, as the
community's file) or from segmentation masks (classes whose value c+1 appears).

Usage::

    python tools/dataset_converters/make_cls_labels.py ROOT --splits ImageSets/Segmentation/train_aug.txt \\
        ImageSets/Segmentation/val.txt [--source xml|mask] [--mask-dir SegmentationClassAug] \\
        [--classes ...] [--out cls_labels.npy]

Relative paths are taken under ROOT. Classes default to the 20 VOC classes, or to ``meta.json``'s under ROOT.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np

from csd_mm.datasets.labels import (VOC_CLASSES, LabelFileError, labels_from_masks, labels_from_xml,
                                    read_split, save_cls_labels)


def _under(root: str, path: str) -> str:
    return path if osp.isabs(path) else osp.join(root, path)


def _input(root: str, path: str) -> str:
    """An input path: relative to ROOT, or as given when only that exists (e.g. ``ROOT/ImageSets/...``)."""
    under = _under(root, path)
    return path if not osp.exists(under) and osp.exists(path) else under


def default_classes(root: str) -> List[str]:
    """Foreground classes from ``ROOT/meta.json`` (background first there) if present, else VOC's 20."""
    meta = osp.join(root, 'meta.json')
    if osp.isfile(meta):
        with open(meta, encoding='utf-8') as f:
            classes = json.load(f).get('classes')
        if classes:
            return [c for c in classes if c != 'background']
    return list(VOC_CLASSES)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='dataset root (VOC layout)')
    parser.add_argument('--splits', nargs='+', required=True, help='split files (one id per line)')
    parser.add_argument('--source', choices=('xml', 'mask'), default='xml')
    parser.add_argument('--ann-dir', default='Annotations', help='XML folder for --source xml')
    parser.add_argument('--mask-dir', default='SegmentationClassAug', help='mask folder for --source mask')
    parser.add_argument('--ignore-index', type=int, default=255)
    parser.add_argument('--classes', nargs='+', help='foreground class names in label order')
    parser.add_argument('--out', default='cls_labels.npy', help='output file')
    args = parser.parse_args(argv)
    classes = args.classes or default_classes(args.root)
    labels: Dict[str, np.ndarray] = {}
    try:
        for split in args.splits:
            ids = [i for i in read_split(_input(args.root, split)) if i not in labels]
            if args.source == 'xml':
                labels.update(labels_from_xml(_input(args.root, args.ann_dir), ids, classes))
            else:
                labels.update(labels_from_masks(_input(args.root, args.mask_dir), ids, len(classes),
                                                ignore_index=args.ignore_index))
    except LabelFileError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    out = _under(args.root, args.out)
    save_cls_labels(out, labels)
    print(f'{out}: {len(labels)} images, {len(classes)} classes')
    return 0


if __name__ == '__main__':
    sys.exit(main())
