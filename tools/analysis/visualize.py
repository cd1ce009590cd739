"""Draws image / CAMs / seeds / pseudo mask / ground truth side by side, one row per run, as PNG grids.

Each ``--run NAME CAM_DIR [threshold=T] [masks=DIR]`` adds a row per image (e.g. the baseline's and CSD's CAMs
one above the other); ``threshold`` draws the seeds at that background score, ``masks`` a folder of pseudo
masks. Images: ``--ids`` or the first ``--num N`` multi-label images of ``--split``. Masks are drawn by mmseg's
SegLocalVisualizer with the dataset's palette (``meta.json`` of the data root, else VOC's).

Examples::

    # baseline vs CSD on 4 multi-label toy images, one grid
    python tools/analysis/visualize.py work_dirs/vis/grid.png --data-root data/toy_voc --num 4 --scale 3 \\
        --run baseline work_dirs/pipeline_toy/seed0/resnet/baseline/cams threshold=0.30 \\
            masks=work_dirs/pipeline_toy/seed0/resnet/baseline/pseudo_masks_crf \\
        --run CSD work_dirs/pipeline_toy/seed0/resnet/csd/cams threshold=0.30
    # VOC: one PNG per image into a folder
    python tools/analysis/visualize.py work_dirs/cam_vis --data-root data/VOCdevkit/VOC2012 \\
        --labels voc12/cls_labels.npz --ids 2007_000032 2007_000039 --run CSD work_dirs/csd/cams threshold=0.25
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

import csd_mm  # noqa: F401  (adapts third-party breakages)
from csd_mm.datasets import load_cls_labels, read_split
from csd_mm.utils import check_cam_folder, write_png
from csd_mm.visualization import class_meta, draw_result_grid, multi_label_ids


def parse_run(values: Sequence[str]) -> Dict:
    """``[NAME, CAM_DIR, KEY=VALUE...]`` -> ``dict(name, cam_dir, threshold, mask_dir)``.

    Raises:
        ValueError: fewer than two values, or an unknown / malformed option.
    """
    if len(values) < 2:
        raise ValueError(f'--run needs NAME CAM_DIR [threshold=T] [masks=DIR], got {list(values)}')
    run = dict(name=values[0], cam_dir=values[1])
    for option in values[2:]:
        key, sep, value = option.partition('=')
        if not sep or key not in ('threshold', 'masks'):
            raise ValueError(f'--run {values[0]}: unknown option {option!r} (threshold=T or masks=DIR)')
        if key == 'threshold':
            try:
                run['threshold'] = float(value)
            except ValueError:
                raise ValueError(f'--run {values[0]}: threshold must be a number, got {value!r}') from None
        else:
            run['mask_dir'] = value
    return run


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', help='a .png file: one grid of every image; else a folder: <img_id>.png per image')
    parser.add_argument('--run', nargs='+', action='append', required=True, metavar=('NAME', 'CAM_DIR'),
                        help='a row per image: NAME CAM_DIR [threshold=T] [masks=DIR] (repeatable)')
    ids = parser.add_mutually_exclusive_group(required=True)
    ids.add_argument('--ids', nargs='+', help='image ids')
    ids.add_argument('--num', type=int, help='the first N multi-label images of --split')
    parser.add_argument('--data-root', help='VOC-format root: default images JPEGImages/, ground truth '
                        'SegmentationClassAug/, labels cls_labels.npz (else .npy), split ImageSets/Segmentation/train.txt')
    parser.add_argument('--img-dir')
    parser.add_argument('--gt-dir', help='ground-truth masks (<img_id>.png); none: no ground-truth panel')
    parser.add_argument('--labels', help='image-level labels (cls_labels.npy / .npz) for --num')
    parser.add_argument('--split', help='split file for --num, one id per line')
    parser.add_argument('--img-suffix', default='.jpg')
    parser.add_argument('--classes', nargs='+', help='class names with background first')
    parser.add_argument('--scale', type=int, default=1, help='integer enlargement of every panel (tiny images)')
    args = parser.parse_args(argv)
    root = args.data_root
    if root:
        args.img_dir = args.img_dir or osp.join(root, 'JPEGImages')
        gt = osp.join(root, 'SegmentationClassAug')
        args.gt_dir = args.gt_dir or (gt if osp.isdir(gt) else None)
        # the configs' cls_labels.npz (docs/data_preparation.md), else a community / toy cls_labels.npy
        npz = osp.join(root, 'cls_labels.npz')
        args.labels = args.labels or (npz if osp.isfile(npz) else osp.join(root, 'cls_labels.npy'))
        args.split = args.split or osp.join(root, 'ImageSets/Segmentation/train.txt')
    if args.img_dir is None:
        parser.error('give --data-root or --img-dir')
    if args.num is not None and (args.labels is None or args.split is None):
        parser.error('--num needs --labels and --split (or --data-root)')
    if args.scale < 1:
        parser.error('--scale must be >= 1')
    try:
        args.run = [parse_run(r) for r in args.run]
    except ValueError as e:
        parser.error(str(e))
    return args


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    """Writes the grid(s); returns the written paths."""
    args = parse_args(argv)
    try:
        names, palette = class_meta(args.data_root, args.classes)
        ids = args.ids
        if ids is None:
            ids = multi_label_ids(read_split(args.split), load_cls_labels(args.labels), args.num)
            if not ids:
                raise ValueError(f'{args.split}: no multi-label image (labels {args.labels})')
        for run in args.run:  # CAMs of another dataset (other ids, more classes): refused before drawing
            check_cam_folder(run['cam_dir'], ids, len(names) - 1)
        groups = [ids] if args.out.endswith('.png') else [[i] for i in ids]
        written = []
        for group in groups:
            grid = draw_result_grid(group, args.run, args.img_dir, names, palette, args.gt_dir, args.img_suffix,
                                    args.scale)
            out = args.out if len(groups) == 1 and args.out.endswith('.png') else osp.join(args.out,
                                                                                         f'{group[0]}.png')
            write_png(out, np.ascontiguousarray(grid[..., ::-1]))  # atomic; cv2 writes BGR
            written.append(out)
            print(out)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f'error: {e}')
    return written


if __name__ == '__main__':
    main()
