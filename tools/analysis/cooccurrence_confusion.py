"""Co-occurrence confusion of CAM seeds or masks: how much of a class is predicted as its usual partner.

What CSD (Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation", BMVC
2023) claims to improve: classes that co-occur in the image-level labels (horse / rider) get confused. For the
top-k most co-occurring class pairs (a, b) of the split's labels, over the images whose label holds both, it
prints the share of the ground-truth pixels of a predicted as b and of b predicted as a, and the per-class IoU
on single-label vs multi-label images (:mod:`csd_mm.evaluation.functional.cooccurrence_confusion`).

The input folder holds either CAM files (``<id>.npz``; seeds = argmax over [t, cams], as
``tools/analysis/eval_seeds.py``) or mask PNGs (pseudo masks or segmentation predictions, values 0..C and 255);
the kind is detected. Without ``--threshold`` a CAM folder is first swept for its best background score.

Example:
    python tools/analysis/cooccurrence_confusion.py work_dirs/baseline/cams data/toy_voc/SegmentationClassAug \\
        --split data/toy_voc/ImageSets/Segmentation/train.txt --labels data/toy_voc/cls_labels.npy \\
        --meta data/toy_voc/meta.json --threshold 0.25 --top-k 3 --out work_dirs/baseline/cooc.json
"""
import argparse
import json
import os
import sys
from typing import List, Optional

from csd_mm.datasets import labels_for_split, load_cls_labels, read_split
from csd_mm.evaluation.functional import (cooccurrence_confusion_of_dir, dump_cooccurrence_confusion,
                                          evaluate_cam_folder, format_cooccurrence_confusion)
from csd_mm.evaluation.functional.cooccurrence_confusion import detect_prediction_kind


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Confusion between the most co-occurring classes, and IoU on '
                                     'single- vs multi-label images, of CAM seeds or masks.')
    parser.add_argument('pred_dir', metavar='CAM_OR_MASK_DIR',
                        help='folder of <img_id>.npz CAM files or of <img_id>.png masks (values 0..C, 255)')
    parser.add_argument('gt_dir', help='folder of ground-truth masks <img_id><gt-suffix>')
    parser.add_argument('--split', required=True, help='split file, one image id per line')
    parser.add_argument('--labels', required=True, help='image-level labels (cls_labels.npy)')
    parser.add_argument('--threshold', type=float,
                        help='background score of the CAM seeds (default: the best of the seed sweep); '
                        'CAM folders only')
    parser.add_argument('--top-k', type=int, default=3, help='how many co-occurring pairs (default 3)')
    names = parser.add_mutually_exclusive_group()
    names.add_argument('--class-names', nargs='+', metavar='NAME',
                       help='class names, background first (or the C foreground names alone)')
    names.add_argument('--meta', help='class names, background first: a .json file (a list or a dict with '
                       '"classes", like the toy dataset\'s meta.json), a .txt file (one per line) or a registered '
                       'mmseg dataset type, e.g. PascalVOCDataset')
    parser.add_argument('--ignore-index', type=int, default=255)
    parser.add_argument('--gt-suffix', default='.png')
    parser.add_argument('--out', help='write the report to this JSON file')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def class_names_from_meta(meta: str) -> List[str]:
    """Class names from a .json (a list, or a dict with ``classes``) or .txt file (one name per line), or from
    the METAINFO of a registered mmseg dataset type (e.g. ``PascalVOCDataset``)."""
    if not os.path.isfile(meta):
        import csd_mm  # noqa: F401  (registers the project's datasets)
        import mmseg.datasets  # noqa: F401
        from mmseg.registry import DATASETS
        cls = DATASETS.get(meta)
        if cls is None or 'classes' not in getattr(cls, 'METAINFO', {}):
            raise FileNotFoundError(f'--meta {meta}: neither a file nor a registered dataset type with classes')
        return list(cls.METAINFO['classes'])
    with open(meta, encoding='utf-8') as f:
        if meta.endswith('.json'):
            try:
                data = json.load(f)
            except ValueError as e:
                raise ValueError(f'--meta {meta} is not valid JSON: {e}') from e
            names = data.get('classes') if isinstance(data, dict) else data
        else:
            names = [ln.strip() for ln in f if ln.strip()]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f'--meta {meta} does not list class names (a list, or a dict with "classes")')
    return names


def _full_names(names: Optional[List[str]], num_fg: int) -> Optional[List[str]]:
    """``C + 1`` names, background first; ``C`` names get 'background' prepended."""
    if names is not None and len(names) == num_fg:
        return ['background'] + list(names)
    return names


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    progress = not args.no_progress
    try:
        ids = read_split(args.split)
        label_dict = load_cls_labels(args.labels)
        if not label_dict:
            raise ValueError(f'label file {args.labels} holds no label')
        num_fg = len(next(iter(label_dict.values())))
        labels = labels_for_split(label_dict, ids, num_fg, args.labels)
        names = args.class_names if args.class_names else (
            class_names_from_meta(args.meta) if args.meta else None)
        names = _full_names(names, num_fg)
        threshold = args.threshold
        kind = detect_prediction_kind(args.pred_dir, ids)
        if kind == 'cam' and threshold is None:
            sweep = evaluate_cam_folder(args.pred_dir, args.gt_dir, ids, num_fg + 1, progress=progress,
                                        ignore_index=args.ignore_index, gt_suffix=args.gt_suffix)
            threshold = sweep['best_threshold']
            print(f'no --threshold: the best background score of the seed sweep, t={threshold:.2f} '
                  f'(seed mIoU {sweep["best_miou"] * 100:.2f})')
        result = cooccurrence_confusion_of_dir(args.pred_dir, args.gt_dir, ids, labels, threshold=threshold,
                                               top_k=args.top_k, class_names=names, progress=progress,
                                               ignore_index=args.ignore_index, gt_suffix=args.gt_suffix)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
    print(format_cooccurrence_confusion(result))
    if args.out:
        dump_cooccurrence_confusion(args.out, result)
        print(f'report written to {args.out}')


if __name__ == '__main__':
    main()
