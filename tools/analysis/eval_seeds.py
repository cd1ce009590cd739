"""Seed mIoU of a folder of CAM files: sweep the background score, report the best one and the curve.

The seed protocol of IRN (Ahn et al., CVPR 2019) used by Yang et al., "Cross-domain Semantic Decoupling for
Weakly-Supervised Semantic Segmentation" (BMVC 2023): for each background score t in 0.00 .. 0.59, the seed of a
pixel is the argmax over [t, cam_1 .. cam_K]; report the t of the best mIoU (VOC: train split against
SegmentationClassAug).

Example:
    python tools/analysis/eval_seeds.py work_dirs/cams data/VOCdevkit/VOC2012/SegmentationClassAug \\
        --split data/VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt --num-classes 21 \\
        --out work_dirs/seed_sweep.json --num-workers 2
"""
import argparse
import json
import os
import sys
from typing import List, Optional

from csd_mm.datasets import read_split
from csd_mm.evaluation.functional import dump_sweep_json, evaluate_cam_folder, format_sweep


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate CAM seeds over a sweep of background scores.')
    parser.add_argument('cam_dir', help='folder of <img_id>.npz CAM files')
    parser.add_argument('gt_dir', help='folder of ground-truth masks <img_id><gt-suffix>')
    parser.add_argument('--split', required=True, help='split file, one image id per line')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--num-classes', type=int, help='number of classes incl. background (default 21)')
    group.add_argument('--classes-from', metavar='META',
                       help='class names (background first): a .txt file (one per line), a .json file (a list '
                       'or a dict with "classes") or a registered mmseg dataset type, e.g. PascalVOCDataset')
    parser.add_argument('--thresholds', type=float, nargs='+', help='background scores (default 0.00..0.59)')
    parser.add_argument('--ignore-index', type=int, default=255)
    parser.add_argument('--gt-suffix', default='.png')
    parser.add_argument('--out', help='write the whole sweep to this JSON file')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.add_argument('--num-workers', type=int, default=0,
                        help='worker processes reading and sweeping the files (default 0: this process)')
    return parser.parse_args(argv)


def load_class_names(meta: str) -> List[str]:
    """Class names from a .txt / .json file or from the METAINFO of a registered mmseg dataset type."""
    if os.path.isfile(meta):
        if meta.endswith('.json'):
            with open(meta) as f:
                data = json.load(f)
            names = data.get('classes') if isinstance(data, dict) else data
        else:
            with open(meta) as f:
                names = [ln.strip() for ln in f if ln.strip()]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f'{meta} does not list class names')
        return names
    import csd_mm  # noqa: F401  (registers the project's datasets)
    import mmseg.datasets  # noqa: F401
    from mmseg.registry import DATASETS
    cls = DATASETS.get(meta)
    if cls is None or 'classes' not in getattr(cls, 'METAINFO', {}):
        raise ValueError(f'--classes-from {meta}: neither a file nor a registered dataset type with classes')
    return list(cls.METAINFO['classes'])


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        names = load_class_names(args.classes_from) if args.classes_from else None
        num_classes = len(names) if names else (args.num_classes or 21)
        ids = read_split(args.split)
        result = evaluate_cam_folder(args.cam_dir, args.gt_dir, ids, num_classes, args.thresholds,
                                     progress=not args.no_progress, ignore_index=args.ignore_index,
                                     gt_suffix=args.gt_suffix, num_workers=args.num_workers)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
    print(f'{result["num_images"]} images of {args.split}, {num_classes} classes')
    print(format_sweep(result, names))
    if args.out:
        dump_sweep_json(args.out, result, names)
        print(f'sweep written to {args.out}')


if __name__ == '__main__':
    main()
