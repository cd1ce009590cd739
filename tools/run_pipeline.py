"""Runs the CSD pipeline end to end with the stock tools and prints the seed table.

Stages, for each seed and CAM network (IRN-style ResNet, MCTformer-V2; tiny on the toy data): (0) the baseline
CAM network (tools/train.py); its CAM hook writes the CAMs of every training image and the source bank of the
single-label ones; (1) CSD training on that bank, same model, init, schedule and number of iterations; its hook
writes the CSD CAMs; (2) the seed sweep of both against the ground truth (all images, single-label images,
multi-label images). Each stage is skipped when its outputs are
complete, and a crashed training resumes from its last checkpoint (``--resume``), so rerunning the command
continues where it stopped.

On the embedded toy dataset (the default; generated on first use) this runs on a CPU in minutes::

    python tools/run_pipeline.py                      # ResNet and MCTformer, baseline vs CSD, seeds 0 1 2
    python tools/run_pipeline.py --models resnet --seeds 0 --iters 100
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Sequence

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import csd_mm  # noqa: E402,F401
from csd_mm.datasets import load_cls_labels, make_toy_voc, read_split  # noqa: E402
from csd_mm.datasets.source_bank import source_bank_complete  # noqa: E402
from csd_mm.evaluation.functional import (confusion_to_iou, default_thresholds, evaluate_cam_folder,  # noqa: E402
                                          summarize_sweep)
from csd_mm.utils.cam_io import is_complete  # noqa: E402
from csd_mm.utils.fileio import atomic_write_bytes  # noqa: E402

#: model -> (baseline config, CSD config) on the toy dataset
MODELS = {
    'resnet': ('configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py',
               'configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py'),
    'mctformer': ('configs/toy/mctformer_tiny_1xb16_300it_toy_64x64.py',
                  'configs/toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py'),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/pipeline_toy', help='where every stage writes')
    parser.add_argument('--data-root', default='data/toy_voc',
                        help='VOC-format root; the toy dataset is generated there if it is missing')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=None, help='training iterations (default: the configs\')')
    parser.add_argument('--models', nargs='+', choices=sorted(MODELS), default=['resnet', 'mctformer'],
                        help='CAM networks to run, each as baseline and + CSD')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='extra key=value overrides for both trainings (e.g. model.head.loss_weight=1)')
    parser.add_argument('--csd-variant', nargs='+', action='append', default=None, metavar=('NAME', 'KEY=VALUE'),
                        help='extra CSD runs on the same source bank (repeatable), e.g. --csd-variant uniform '
                        'train_dataloader.dataset.sampling=uniform; default: csd_all (iterate_over=all, the '
                        'classification loss on every training image; docs/method.md). --csd-variant none: no extra run')
    args = parser.parse_args()
    if args.csd_variant is None:
        args.csd_variant = [['csd_all', 'train_dataloader.dataset.iterate_over=all']]
    args.csd_variant = [v for v in args.csd_variant if v != ['none']]
    return args


def log(msg: str) -> None:
    print(f'[pipeline {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def train(config: str, work_dir: str, options: Sequence[str]) -> None:
    """Runs tools/train.py (resuming from the last checkpoint when one exists)."""
    cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), config, '--work-dir', work_dir]
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        cmd.append('--resume')
    cmd += ['--cfg-options', *options]
    log(' '.join(cmd[1:]))
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'pipeline_stage.log'), 'a') as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=os.getcwd())
    if proc.returncode != 0:
        raise SystemExit(f'stage failed ({proc.returncode}); see {work_dir}/pipeline_stage.log. '
                         'Rerun the same command to resume.')


def data_options(data_root: str, csd: bool) -> List[str]:
    """Points every dataset of a config at ``data_root`` (a CSD config wraps its training dataset)."""
    train = 'train_dataloader.dataset.dataset' if csd else 'train_dataloader.dataset'
    keys = [train, 'test_dataloader.dataset', 'custom_hooks.0.dataloader.dataset']
    return [f'{k}.data_root={data_root}' for k in keys]


def seed_scores(cam_dir: str, gt_dir: str, ids: Sequence[str], labels: Dict[str, np.ndarray],
                num_classes: int) -> Dict[str, float]:
    """Best-threshold seed mIoU over all images, and single- / multi-label images at that threshold.

    Each CAM is read once: the subsets are evaluated separately and their confusions summed for all images.
    """
    groups = dict(single=[i for i in ids if labels[i].sum() == 1], multi=[i for i in ids if labels[i].sum() >= 2],
                  other=[i for i in ids if labels[i].sum() == 0])
    confusion = {name: evaluate_cam_folder(cam_dir, gt_dir, subset, num_classes, progress=False)['confusion']
                 for name, subset in groups.items() if subset}
    total = summarize_sweep(sum(confusion.values()), default_thresholds())
    best = total['best_index']
    scores = dict(all=100 * total['best_miou'], threshold=float(total['best_threshold']))
    for name in ('single', 'multi'):
        conf = confusion.get(name)
        scores[name] = 100 * float(np.nanmean(confusion_to_iou(conf[best]))) if conf is not None else float('nan')
    return scores


def run_model(args, model: str, seed: int, data_root: str, common: List[str], train_aug: List[str],
              eval_ids: List[str], labels: Dict[str, np.ndarray], num_classes: int, gt_dir: str) -> List[Dict]:
    """Stage 0 (baseline + source bank) and stage 1 (CSD and its variants) of one model and seed."""
    baseline_cfg, csd_cfg = MODELS[model]
    root = osp.join(args.work_dir, f'seed{seed}', model)
    base_dir = osp.join(root, 'baseline')
    seed_opts = [f'randomness.seed={seed}']
    if is_complete(osp.join(base_dir, 'cams'), train_aug) and source_bank_complete(
            osp.join(base_dir, 'source_bank')):
        log(f'seed {seed} {model}: baseline + source bank complete, skipped')
    else:
        log(f'seed {seed} {model}: stage 0, baseline CAM network -> CAMs -> source bank')
        train(baseline_cfg, base_dir, seed_opts + data_options(data_root, False) + common)
    runs = [(model, base_dir)]
    for name, *options in [['csd']] + args.csd_variant:
        work = osp.join(root, name)
        runs.append((f'{model} + {name}', work))
        if is_complete(osp.join(work, 'cams'), train_aug):
            log(f'seed {seed} {model}: {name} complete, skipped')
            continue
        log(f'seed {seed} {model}: stage 1, {name}: CSD training on the source bank -> CAMs')
        train(csd_cfg, work, seed_opts + data_options(data_root, True) + common + [
            f'train_dataloader.dataset.source_bank={osp.join(base_dir, "source_bank")}',
            f'train_dataloader.dataset.seed={seed}'] + options)
    rows = []
    for method, work in runs:
        scores = seed_scores(osp.join(work, 'cams'), gt_dir, eval_ids, labels, num_classes)
        rows.append(dict(method=method, seed=seed, **scores))
        log(f"seed {seed} {method}: seed mIoU {scores['all']:.2f} (single {scores['single']:.2f}, "
            f"multi {scores['multi']:.2f}) at t={scores['threshold']:.2f}")
    return rows


def markdown_table(rows: List[Dict]) -> str:
    lines = ['| method | seed | seed mIoU (all) | single-label | multi-label | best t |',
             '|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['method']} | {r['seed']} | {r['all']:.2f} | {r['single']:.2f} | {r['multi']:.2f} | "
                     f"{r['threshold']:.2f} |")
    for method in dict.fromkeys(r['method'] for r in rows):
        sel = [r for r in rows if r['method'] == method]
        if len(sel) > 1:
            stat = {k: (np.mean([r[k] for r in sel]), np.std([r[k] for r in sel])) for k in
                    ('all', 'single', 'multi')}
            lines.append(f"| **{method}** | mean ± std | " + ' | '.join(
                f'{m:.2f} ± {s:.2f}' for m, s in stat.values()) + ' | |')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    start = time.time()
    data_root = args.data_root
    if not osp.isfile(osp.join(data_root, 'cls_labels.npy')):
        log(f'generating the toy dataset in {data_root}')
        make_toy_voc(data_root)
    labels = load_cls_labels(osp.join(data_root, 'cls_labels.npy'))
    train_aug = read_split(osp.join(data_root, 'ImageSets/Segmentation/train_aug.txt'))
    eval_ids = read_split(osp.join(data_root, 'ImageSets/Segmentation/train.txt'))
    num_classes = len(next(iter(labels.values()))) + 1
    gt_dir = osp.join(data_root, 'SegmentationClassAug')
    common = list(args.cfg_options)
    if args.iters is not None:
        common += [f'train_cfg.max_iters={args.iters}', f'param_scheduler.0.end={args.iters}']

    rows = []
    for seed in args.seeds:
        for model in args.models:
            rows += run_model(args, model, seed, data_root, common, train_aug, eval_ids, labels, num_classes,
                              gt_dir)
    table = markdown_table(rows)
    result = dict(data_root=data_root, eval_split='train', num_eval_images=len(eval_ids), rows=rows,
                  wall_time_s=round(time.time() - start, 1))
    atomic_write_bytes(osp.join(args.work_dir, 'results.json'), json.dumps(result, indent=1).encode())
    atomic_write_bytes(osp.join(args.work_dir, 'results.md'), (table + '\n').encode())
    print(f'\nSeed mIoU (%) on {len(eval_ids)} training images of {data_root} (split train):\n')
    print(table)
    print(f'\nwritten: {args.work_dir}/results.json, results.md; wall time {result["wall_time_s"]:.0f} s')


if __name__ == '__main__':
    main()
