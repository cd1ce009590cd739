"""Generates the synthetic VOC-format toy dataset with a co-occurrence confound (see csd_mm/datasets/toy.py).

Usage::

    python tools/dataset_converters/make_toy_voc.py data/toy_voc [--num-train 200] [--num-val 60]
        [--size 64] [--seed 0]
"""
import argparse
import json
import sys
from typing import List, Optional

from csd_mm.datasets.toy import make_toy_voc


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='output folder')
    parser.add_argument('--num-train', type=int, default=200, help='train_aug images')
    parser.add_argument('--num-val', type=int, default=60, help='val images')
    parser.add_argument('--num-train-subset', type=int, default=None,
                        help='size of the train split (default: half of train_aug)')
    parser.add_argument('--size', type=int, default=64, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-ignore-border', action='store_true', help='no 255 border around objects')
    args = parser.parse_args(argv)
    try:
        summary = make_toy_voc(args.root, num_train=args.num_train, num_val=args.num_val, size=args.size,
                               seed=args.seed, num_train_subset=args.num_train_subset,
                               ignore_border=not args.no_ignore_border)
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    state = 'complete already, skipped' if summary['skipped'] else 'written'
    print(f'{args.root}: {state}')
    print(json.dumps({k: v for k, v in summary.items() if k not in ('train_aug', 'val')}))
    for split in ('train_aug', 'val'):
        s = summary[split]
        print(f"{split}: {s['num_images']} images, {s['num_source']} single-label, {s['num_target']} "
              f"multi-label; per class {s['class_counts']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
