"""Writes PNG overlays of CAM files: the image, one heatmap per class, and the seeds at a background score.

Example:
    python tools/analysis/visualize_cams.py work_dirs/cams data/voc12/JPEGImages work_dirs/cam_vis \
        --ids 2007_000032 2007_000039 --threshold 0.25
"""
import argparse
import json
import os

import mmcv
import numpy as np

from csd_mm.datasets import read_split
from csd_mm.utils import cam_path, check_cam_folder, load_cam, write_png
from csd_mm.visualization import draw_cam_row


def main() -> None:
    parser = argparse.ArgumentParser(description='Visualise CAM files as heatmap and seed overlays.')
    parser.add_argument('cam_dir')
    parser.add_argument('img_dir')
    parser.add_argument('out_dir')
    ids = parser.add_mutually_exclusive_group(required=True)
    ids.add_argument('--ids', nargs='+')
    ids.add_argument('--split', help='split file, one image id per line')
    parser.add_argument('--threshold', type=float, default=0.25, help='background score of the seeds')
    parser.add_argument('--img-suffix', default='.jpg')
    parser.add_argument('--classes', nargs='+', help='class names with background first (default: VOC\'s 21, '
                        'or those of a meta.json beside img_dir, as the toy dataset writes)')
    args = parser.parse_args()

    from mmseg.datasets import PascalVOCDataset
    names = list(PascalVOCDataset.METAINFO['classes'])
    meta = os.path.join(os.path.dirname(os.path.abspath(args.img_dir)), 'meta.json')
    if args.classes:
        names = list(args.classes)
    elif os.path.isfile(meta):
        with open(meta) as f:
            names = list(json.load(f)['classes'])
    palette = np.array(PascalVOCDataset.METAINFO['palette'], np.uint8)
    ids = args.ids or read_split(args.split)
    try:  # CAMs of another dataset (other ids, more classes) or ids with path parts: refused before drawing
        check_cam_folder(args.cam_dir, ids, len(names) - 1)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'error: {e}')
    os.makedirs(args.out_dir, exist_ok=True)
    for img_id in ids:
        img_file = os.path.join(args.img_dir, img_id + args.img_suffix)
        img = mmcv.imread(img_file)  # raises FileNotFoundError naming the file
        cam, keys = load_cam(cam_path(args.cam_dir, img_id))
        try:
            row = draw_cam_row(img, cam, keys, names, palette, args.threshold)
        except ValueError as e:
            raise SystemExit(f'error: {img_file}: {e}')
        out = os.path.join(args.out_dir, f'{img_id}.png')
        write_png(out, row)  # atomic
        print(out)


if __name__ == '__main__':
    main()
