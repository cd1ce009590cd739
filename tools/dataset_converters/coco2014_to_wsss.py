"""Converts MS COCO 2014 instance annotations into the project's WSSS inputs (80 classes).

Usage::

    python tools/dataset_converters/coco2014_to_wsss.py data/coco [--nproc 16] [--no-masks] \\
        [--ann-files train2014=PATH val2014=PATH] [--toy]

Reads ``<root>/annotations/instances_{train,val}2014.json`` (or ``--ann-files``) and writes under ``<root>``:
``SegmentationClass/<split>/<img_id>.png`` (0 background, 1..80, 255 crowd), ``ImageSets/<split>.txt`` (every
image: 82,783 / 40,504), ``ImageSets/<split>_cls.txt`` (images with a label: about 82,081 / 40,137) and
``cls_labels.npz`` (80 classes, COCO's category ids in ascending order). It prints the counts. Masks are decoded
with pycocotools, COCO's API (``pip install -r requirements/optional/coco.txt``); without it the tool says so and
exits with status 1 (``--no-masks`` does not need it).
``--toy`` first generates the COCO-format toy dataset in ``<root>`` (csd_mm/datasets/toy_coco.py).
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from csd_mm.datasets.coco_converter import convert_coco  # noqa: E402
from csd_mm.datasets.labels import LabelFileError  # noqa: E402
from csd_mm.datasets.toy_coco import make_toy_coco  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='COCO root (train2014/, val2014/, annotations/); outputs are written here')
    parser.add_argument('--ann-files', nargs='+', metavar='SPLIT=JSON',
                        help='split name -> instances json (default: annotations/instances_{train,val}2014.json)')
    parser.add_argument('--nproc', type=int, default=1, help='processes for the masks')
    parser.add_argument('--no-masks', action='store_true', help='labels and split files only')
    parser.add_argument('--toy', action='store_true', help='generate the COCO-format toy dataset in ROOT first')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.ann_files:
        pairs = [a.split('=', 1) for a in args.ann_files]
        if any(len(p) != 2 for p in pairs):
            print(f'error: --ann-files takes SPLIT=JSON pairs, got {args.ann_files}', file=sys.stderr)
            return 2
        ann_files = dict(pairs)
    else:
        ann_files = {s: osp.join(args.root, 'annotations', f'instances_{s}.json') for s in ('train2014', 'val2014')}
    try:
        if args.toy:  # its compressed RLEs are pycocotools' too
            make_toy_coco(args.root)
        convert_coco(ann_files, args.root, masks=not args.no_masks, nproc=args.nproc, progress=sys.stdout.isatty())
    except (LabelFileError, ImportError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'written: {osp.join(args.root, "cls_labels.npz")}, ImageSets/, SegmentationClass/')
    return 0


if __name__ == '__main__':
    sys.exit(main())
