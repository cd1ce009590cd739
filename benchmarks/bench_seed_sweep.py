"""Seed sweep speed: the one-pass confusion histograms against one seed + confusion per threshold.

    python benchmarks/bench_seed_sweep.py [--images 20] [--size 375 500] [--classes 21]

Prints milliseconds per image for both and checks they agree exactly. Results: docs/benchmarks.md.
"""
import argparse
import time

import numpy as np

import csd_mm  # noqa: F401
from csd_mm.evaluation.functional import default_thresholds, seed_from_cam, sweep_confusion


def naive(cam, keys, gt, num_classes, thresholds):
    out = np.zeros((len(thresholds), num_classes, num_classes), np.int64)
    valid = gt != 255
    for i, t in enumerate(thresholds):
        pred = seed_from_cam(cam, keys, t)
        out[i] = np.bincount(num_classes * gt[valid].astype(np.int64) + pred[valid],
                             minlength=num_classes ** 2).reshape(num_classes, num_classes)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--images', type=int, default=20)
    parser.add_argument('--size', type=int, nargs=2, default=(375, 500))
    parser.add_argument('--classes', type=int, default=21)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    thresholds = default_thresholds()
    samples = []
    for _ in range(args.images):
        keys = np.sort(rng.choice(args.classes - 1, size=rng.integers(1, 4), replace=False))
        cam = rng.random((len(keys), *args.size)).astype(np.float32)
        gt = rng.integers(0, args.classes, size=args.size).astype(np.uint8)
        gt[rng.random(args.size) < 0.05] = 255
        samples.append((cam, keys, gt))
    timings = {}
    for name, fn in (('one-pass sweep', sweep_confusion), ('per-threshold', naive)):
        start = time.perf_counter()
        results = [fn(cam, keys, gt, args.classes, thresholds) for cam, keys, gt in samples]
        timings[name] = (time.perf_counter() - start) / args.images * 1000
        timings[name + ' result'] = sum(results)
    assert np.array_equal(timings['one-pass sweep result'], timings['per-threshold result'])
    print(f'{args.images} images {args.size[0]}x{args.size[1]}, {len(thresholds)} thresholds, '
          f'{args.classes} classes (results identical)')
    for name in ('one-pass sweep', 'per-threshold'):
        print(f'  {name:15s} {timings[name]:8.1f} ms / image')


if __name__ == '__main__':
    main()
