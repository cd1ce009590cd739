"""Refines CAM files into pseudo-mask PNGs (and reports their mIoU when ground truth is given).

The refinement step of the WSSS pipeline (PSA / IRN / MCTformer; Yang et al., BMVC 2023): one ``<id>.png``
(values ``0 .. C`` and 255) per ``<id>.npz`` CAM file, written atomically; existing files are skipped.

Examples::

    # dense CRF with PSA's background (1 - max cam) ** 16
    python tools/make_pseudo_masks.py work_dirs/cam/cams data/VOCdevkit/VOC2012/JPEGImages work_dirs/cam/masks_crf \\
        --ids data/VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt --refiner crf \\
        --gt-dir data/VOCdevkit/VOC2012/SegmentationClassAug
    # the seeds themselves at a background threshold of 0.3
    python tools/make_pseudo_masks.py CAMS IMGS OUT --refiner none --bg-threshold 0.3
    # any registered refiner from a Python-style config file that defines `refiner = dict(type=...)`
    python tools/make_pseudo_masks.py CAMS IMGS OUT --refiner configs/psa_affinity/aff_resnet50_1xb8_5e_voc12_448.py
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

import numpy as np
from mmengine.config import Config, DictAction

import csd_mm  # noqa: F401  (adapts third-party breakages and registers every part)
from csd_mm.datasets.labels import LabelFileError, read_split
from csd_mm.refine import DenseCRFRefiner, SeedRefiner, export_pseudo_masks, mask_miou
from csd_mm.utils.cam_io import CAM_SUFFIX


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Refine CAM files into pseudo-mask PNGs')
    parser.add_argument('cam_dir', help='folder of <id>.npz CAM files')
    parser.add_argument('img_dir', help='folder of the images')
    parser.add_argument('out_dir', help='output folder of <id>.png masks')
    parser.add_argument('--ids', help='split file, one id per line (default: every CAM file)')
    parser.add_argument('--refiner', default='crf',
                        help='"crf", "none" (the seed) or a Python-style config file defining `refiner`')
    parser.add_argument('--bg-threshold', type=float, default=None,
                        help='constant background score (crf: instead of the power; none: default 0.15)')
    # the crf flags default to None ("not given"): another refiner refuses them, the crf refiner keeps its defaults
    parser.add_argument('--alpha', type=float, help='crf: background power (default: PSA\'s 16)')
    parser.add_argument('--confident', action='store_true', default=None,
                        help='crf: PSA confident labels (255 where the low/high-alpha CRFs disagree)')
    parser.add_argument('--low-alpha', type=float, help='crf --confident: strong background (default 4)')
    parser.add_argument('--high-alpha', type=float, help='crf --confident: weak background (default 32)')
    parser.add_argument('--crf-iters', type=int, help='crf: mean-field iterations (default 10)')
    parser.add_argument('--img-suffix', default='.jpg', help='image file suffix')
    parser.add_argument('--num-workers', type=int, default=0, help='worker processes')
    parser.add_argument('--gt-dir', help='ground-truth mask folder: print the mask mIoU')
    parser.add_argument('--num-classes', type=int, default=21,
                        help='classes incl. background: CAM files with other class ids are refused; the mIoU')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config file only: overrides, e.g. refiner.checkpoint=work_dirs/aff/iter_200.pth')
    return parser.parse_args(argv)


# the crf-only flags and the DenseCRFRefiner arguments they set: given with another refiner they would be ignored
CRF_FLAGS = dict(alpha='alpha', confident='confident', low_alpha='low_alpha', high_alpha='high_alpha',
                 crf_iters='n_iters')


def refiner_from_args(args: argparse.Namespace):
    """The refiner config the arguments describe."""
    if args.refiner != 'crf':
        ignored = [f'--{k.replace("_", "-")}' for k in CRF_FLAGS if getattr(args, k) is not None]
        if args.refiner != 'none' and args.bg_threshold is not None:
            ignored.insert(0, '--bg-threshold')
        if ignored:
            raise SystemExit(f'{" ".join(ignored)}: for the built-in refiners only (--refiner crf; --bg-threshold '
                             'also none); a config refiner takes its settings from the config or --cfg-options, '
                             'e.g. refiner.bg_threshold=0.3')
    if args.refiner == 'crf':
        given = {name: getattr(args, flag) for flag, name in CRF_FLAGS.items() if getattr(args, flag) is not None}
        return dict(type=DenseCRFRefiner, bg_threshold=args.bg_threshold, **given)  # the rest: its defaults
    if args.refiner == 'none':
        return dict(type=SeedRefiner, bg_threshold=0.15 if args.bg_threshold is None else args.bg_threshold)
    if not osp.isfile(args.refiner):
        raise SystemExit(f'--refiner must be "crf", "none" or a config file; {args.refiner} does not exist')
    cfg = Config.fromfile(args.refiner)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if 'refiner' not in cfg:
        raise SystemExit(f'config {args.refiner} defines no `refiner = dict(type=...)`')
    refiner = cfg['refiner']
    return refiner.to_dict() if hasattr(refiner, 'to_dict') else dict(refiner)


def read_ids(args: argparse.Namespace) -> List[str]:
    """The ids of ``--ids`` (:func:`csd_mm.datasets.read_split`), else of every CAM file in ``cam_dir``."""
    if args.ids:
        try:
            return read_split(args.ids)
        except LabelFileError as err:
            raise SystemExit(str(err)) from None
    if not osp.isdir(args.cam_dir):
        raise SystemExit(f'CAM folder {args.cam_dir} does not exist')
    return sorted(f[:-len(CAM_SUFFIX)] for f in os.listdir(args.cam_dir) if f.endswith(CAM_SUFFIX))


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    ids = read_ids(args)
    if not ids:
        raise SystemExit(f'no ids to process (split {args.ids}, CAM folder {args.cam_dir})')
    refiner = refiner_from_args(args)
    try:
        counts = export_pseudo_masks(args.cam_dir, args.img_dir, ids, args.out_dir, refiner,
                                     num_workers=args.num_workers, progress=not args.no_progress,
                                     img_suffix=args.img_suffix, num_fg_classes=args.num_classes - 1)
    except (FileNotFoundError, ValueError) as err:
        hint = (f' (--num-classes {args.num_classes} counts the classes with background; COCO: --num-classes 81)'
                if 'foreground classes (ids' in str(err) else '')
        raise SystemExit(f'error: {err}{hint}') from None
    print(f'pseudo masks in {args.out_dir}: {counts["written"]} written, {counts["skipped"]} already there')
    result = dict(counts=counts)
    if args.gt_dir:
        res = mask_miou(args.out_dir, args.gt_dir, ids, args.num_classes)
        for c, iou in enumerate(res['IoU']):
            print(f'class {c:3d}: IoU {100 * iou:6.2f}' if not np.isnan(iou) else f'class {c:3d}: IoU    n/a')
        print(f'mask mIoU: {100 * res["mIoU"]:.2f}  (aAcc {100 * res["aAcc"]:.2f}, {len(ids)} images)')
        result['miou'] = res
    return result


if __name__ == '__main__':
    main(sys.argv[1:])
