"""Runs the whole WSSS pipeline, baseline vs CSD, with the stock tools and prints a seed / mask / segmentation table.

Stages, for each seed and CAM network (IRN-style ResNet, MCTformer-V2; tiny on the toy data):

0. the baseline CAM network (``tools/train.py``); its CAM hook writes the CAMs of every training image and the
   source bank of the single-label ones;
1. CSD training on that bank (same model, init, schedule and number of iterations) in the paper's reading
   (``csd``: every image in the classification loss, only multi-label images paired) and each extra variant
   (default: the two other readings, ``csd_multi_label_only`` and ``csd_pair_all``); their hooks write the CSD
   CAMs;
2. seeds: the background-threshold sweep of every run's CAMs against the ground truth of the ``train`` split
   (all images, single-label and multi-label images), and the co-occurrence confusion of the split's most
   co-occurring class pair at the best threshold (share of each class's pixels labelled as the other,
   ``tools/analysis/cooccurrence_confusion.py``);
3. refinement: pseudo masks of every ``train_aug`` image (``--refiner``: dense CRF by default, the seeds, or a
   trained PSA affinity / IRN boundary network, trained here on the run's CAMs), written as PNGs; their mIoU on
   ``train``;
4. segmentation: DeepLabV3+ trained on the pseudo masks with ``tools/train.py``, evaluated on ``val`` with
   ``tools/test.py`` (mmseg's IoUMetric); ``--seg-seeds N`` trains N of them per mask set, each with its own
   training seed (:func:`segmentation_seed`), and reports their mean (the toy DeepLab's val mIoU moves by
   15-17 points between training seeds on identical masks, docs/results.md).

Each stage is skipped when its outputs are complete; a crashed training resumes from its last checkpoint, so
rerunning the same command continues where it stopped. The table is written to ``<work-dir>/results.json`` and
``results.md``. ``results.json`` holds ``rows`` (one per run and seed: the table's figures and where its files
are; ``seg_miou`` is the mean over the run's ``--seg-seeds`` DeepLabs, ``seg_mious`` / ``seg_seeds`` /
``seg_dirs`` each one's val mIoU, training seed and work dir, ``seg_miou_std`` their population std, and
``seg_dir`` the first one's), ``wall_time_s`` and ``stage_seconds``: the wall seconds of each stage this
invocation ran, summed over the runs (``cam_training`` (train.py, with its CAM pass and source bank), ``seeds``
(threshold sweep and co-occurrence confusion), ``refiner_training``, ``pseudo_masks``, ``segmentation_training``,
``segmentation_test``, ``figures``; a stage skipped as finished is absent), ``stage_seconds_by_run`` the same per
run (``seed0/resnet/csd``: {stage: seconds}; ``.``: the figures) and ``figures``: for each seed and model,
``seed<k>/<model>/figure.png``, the first 4 multi-label training images with a row per run (image, CAMs, seeds
at the run's best threshold, pseudo mask, ground truth; ``tools/analysis/visualize.py`` draws the same for any
runs and images).

The console shows each stage and, while a child tool runs, one updating line with its phase (training
iterations, the CAM pass, test iterations), a bar and an ETA, read from the child's log
(``<run dir>/pipeline_stage.log``, which keeps the full output); ``--quiet`` prints only the final table.

On the embedded toy dataset (the default; generated on first use) this runs on a CPU in minutes::

    python tools/run_pipeline.py                                  # ResNet, seed 0: baseline, CSD, 2 readings
    python tools/run_pipeline.py --models resnet mctformer --seeds 0 1 2 --until seeds   # the seed table
    python tools/run_pipeline.py --refiner irn                     # IRN boundary random walk instead of the CRF
    python tools/run_pipeline.py --dataset coco                    # the same on the COCO-format toy (80 classes)
"""
import argparse
import functools
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import csd_mm  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402

from csd_mm.datasets import (COCO_METAINFO, convert_coco, load_cls_labels, make_toy_coco,  # noqa: E402
                             make_toy_voc, read_split)
from csd_mm.datasets.source_bank import source_bank_complete  # noqa: E402
from csd_mm.evaluation.functional import (confusion_to_iou, cooccurrence_confusion_of_dir,  # noqa: E402
                                          default_thresholds, evaluate_cam_folder, summarize_sweep)
from csd_mm.refine import SeedRefiner, export_pseudo_masks, mask_miou  # noqa: E402
from csd_mm.utils.cam_io import is_complete  # noqa: E402
from csd_mm.utils.fileio import atomic_write_bytes, write_png  # noqa: E402
from csd_mm.utils.process import WorkDirLockedError, die_with_parent, lock_work_dir  # noqa: E402
from csd_mm.utils.progress import ConsoleProgress, StageTimer  # noqa: E402
from csd_mm.visualization import class_meta, draw_result_grid, multi_label_ids  # noqa: E402

#: model -> (baseline config, CSD config) on the toy dataset
MODELS = {
    'resnet': ('configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py',
               'configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py'),
    'mctformer': ('configs/toy/mctformer_tiny_1xb16_300it_toy_64x64.py',
                  'configs/toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py'),
}
#: refiner -> (config defining ``refiner``, whether the config first trains a network on the run's CAMs).
#: Every refiner's background score is set to the best threshold of the run's seed sweep.
REFINERS = {
    'crf': ('configs/toy/crf_toy_64x64.py', False),
    'seed': (None, False),
    'psa': ('configs/toy/aff_resnet18_1xb8_200it_toy_64x64.py', True),
    'irn': ('configs/toy/irn_resnet18_1xb8_200it_toy_64x64.py', True),
}
SEG_CONFIG = 'configs/toy/deeplabv3plus_r18_1xb8_1300it_toy_64x64.py'
#: ``--dataset``: the toy in VOC's layout, or in COCO 2014's (generated as COCO json, converted by
#: tools/dataset_converters/coco2014_to_wsss.py's function; 80 classes). Paths are relative to the data root;
#: seeds and masks are scored on ``eval`` (the training images, as VOC's train), DeepLab on ``val``.
DATASETS = {
    'voc': dict(data_root='data/toy_voc', labels='cls_labels.npy', img_dir='JPEGImages', gt_dir='SegmentationClassAug',
                train='ImageSets/Segmentation/train_aug.txt', eval='ImageSets/Segmentation/train.txt',
                val='ImageSets/Segmentation/val.txt', models=MODELS, seg_config=SEG_CONFIG),
    'coco': dict(data_root='data/toy_coco', labels='cls_labels.npz', img_dir='train2014',
                 gt_dir='SegmentationClass/train2014', train='ImageSets/train2014_cls.txt',
                 eval='ImageSets/train2014_cls.txt', val='ImageSets/val2014.txt',
                 models={m: tuple(c.replace('_toy_64x64', '_toy_coco_64x64') for c in cfgs)
                         for m, cfgs in MODELS.items()},
                 seg_config=SEG_CONFIG.replace('_toy_64x64', '_toy_coco_64x64')),
}
UNTIL = ('seeds', 'masks', 'segmentation')
#: The CSD runs besides the paper's reading (``csd``): the two other readings of docs/method.md section 6.
DEFAULT_VARIANTS = (('csd_multi_label_only', 'train_dataloader.dataset.iterate_over=multi_label'),
                    ('csd_pair_all', 'train_dataloader.dataset.pair=all'))
DONE = '.pipeline_done'  # written into a work dir once its training stage finished
#: extra tools/train.py flags of every training (--tensorboard)
TRAIN_FLAGS: List[str] = []


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dataset', choices=sorted(DATASETS), default='voc',
                        help='the toy in VOC\'s layout or in COCO 2014\'s (80 classes, converted from COCO json)')
    parser.add_argument('--work-dir', default=None,
                        help='where every stage writes (default: work_dirs/pipeline_toy[_coco])')
    parser.add_argument('--data-root', default=None,
                        help='dataset root (default: data/toy_voc or data/toy_coco); the toy is generated there if '
                        'it is missing')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--models', nargs='+', choices=sorted(MODELS), default=['resnet'],
                        help='CAM networks to run, each as baseline and + CSD')
    parser.add_argument('--iters', type=int, default=None,
                        help='CAM training iterations (default: the configs\', 300); the learning-rate schedule '
                        'keeps its shape (warm-up and decay scaled to the new length)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='extra key=value overrides for the CAM trainings (e.g. model.head.loss_weight=1)')
    parser.add_argument('--csd-variant', nargs='+', action='append', default=None, metavar=('NAME', 'KEY=VALUE'),
                        help='extra CSD runs on the same source bank (repeatable), e.g. --csd-variant uniform '
                        'train_dataloader.dataset.sampling=uniform; default: the two readings other than the '
                        'paper\'s, csd_multi_label_only (only multi-label images iterated) and csd_pair_all (every '
                        'image paired; docs/method.md section 6). --csd-variant none: no extra run')
    parser.add_argument('--until', choices=UNTIL, default='segmentation',
                        help='last stage to run (seeds: no pseudo masks, no DeepLab)')
    parser.add_argument('--refiner', choices=sorted(REFINERS), default='crf',
                        help='CAM -> pseudo mask: dense CRF, the seeds, or the random walk of a PSA affinity / '
                        'IRN boundary network trained on each run\'s CAMs')
    parser.add_argument('--seg-iters', type=int, default=None,
                        help='DeepLab training iterations (default: the config\'s, 1000)')
    parser.add_argument('--seg-seeds', type=int, default=1, metavar='N',
                        help='DeepLabs trained per mask set, with the training seeds s, s + 1000, ..., '
                        's + 1000 (N - 1) for CAM seed s; the table reports their mean ± std (default: 1, the '
                        'CAM run\'s seed)')
    parser.add_argument('--workers', type=int, default=2, help='processes for the pseudo-mask export')
    parser.add_argument('--tensorboard', action='store_true',
                        help='every training also logs to TensorBoard (tools/train.py --tensorboard; needs pip install '
                        'tensorboard): tensorboard --logdir <work-dir>')
    parser.add_argument('--quiet', action='store_true',
                        help='print only the final table (errors still go to stderr); default: every stage and a '
                        'progress line (iterations, ETA) of the running one')
    args = parser.parse_args(argv)
    args.work_dir = args.work_dir or ('work_dirs/pipeline_toy' + ('_coco' if args.dataset == 'coco' else ''))
    args.data_root = args.data_root or DATASETS[args.dataset]['data_root']
    if args.seg_seeds < 1:
        parser.error(f'--seg-seeds {args.seg_seeds}: train at least one DeepLab per mask set')
    if args.dataset == 'coco' and REFINERS[args.refiner][1]:
        parser.error(f'--refiner {args.refiner} trains on the VOC layout; use crf or seed with --dataset coco')
    if args.tensorboard and not any(importlib.util.find_spec(m) for m in ('tensorboard', 'tensorboardX')):
        parser.error('--tensorboard needs the tensorboard package, which is not installed: pip install tensorboard')
    if args.csd_variant is None:
        args.csd_variant = [list(v) for v in DEFAULT_VARIANTS]
    args.csd_variant = [v for v in args.csd_variant if v != ['none']]
    return args


#: the console: stage messages and the progress line of the running child (``--quiet``: nothing)
CONSOLE = ConsoleProgress()


def log(msg: str) -> None:
    CONSOLE.message(f'[pipeline {time.strftime("%H:%M:%S")}] {msg}')


def run_tool(tool: str, args: Sequence[str], work_dir: str) -> None:
    """Runs ``tools/<tool>`` in a subprocess, its output appended to ``<work_dir>/pipeline_stage.log``.

    The child dies with this process (``PR_SET_PDEATHSIG``), also when this one is killed with SIGKILL, so a
    rerun never finds the previous run's training still writing into the work dir (tools/train.py also locks
    the work dir)."""
    cmd = [sys.executable, osp.join(REPO, 'tools', tool), *args]
    log(' '.join(cmd[1:]))
    os.makedirs(work_dir, exist_ok=True)
    log_file = osp.join(work_dir, 'pipeline_stage.log')
    label = f'{osp.splitext(tool)[0]} ' + '/'.join(osp.normpath(work_dir).split(os.sep)[-3:])
    with open(log_file, 'a') as out:
        start = os.path.getsize(log_file)
        # the child is forked before the follower thread starts: preexec_fn is not safe with threads running
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=os.getcwd(),
                                preexec_fn=functools.partial(die_with_parent, parent=os.getpid()))
        try:
            with CONSOLE.follow(log_file, label, start=start):
                returncode = proc.wait()
        except BaseException:  # e.g. Ctrl-C: do not leave the stage running (as subprocess.run)
            proc.kill()
            proc.wait()
            raise
    if returncode != 0:
        raise SystemExit(f'stage failed ({returncode}); see {work_dir}/pipeline_stage.log. '
                         'Rerun the same command to resume.')


def train(config: str, work_dir: str, options: Sequence[str]) -> None:
    """Runs tools/train.py (resuming from the last checkpoint when one exists) and marks the work dir done."""
    args = [config, '--work-dir', work_dir, *TRAIN_FLAGS]
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        args.append('--resume')
    run_tool('train.py', args + ['--cfg-options', *options], work_dir)
    atomic_write_bytes(osp.join(work_dir, DONE), b'')


def trained(work_dir: str) -> bool:
    return osp.isfile(osp.join(work_dir, DONE))


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def stretched_schedule_options(schedulers: Sequence[Dict], max_iters: int, iters: int) -> List[str]:
    """``--cfg-options`` that train ``iters`` iterations with the shape of an iteration-based schedule made for
    ``max_iters``: every ``begin`` / ``end`` is scaled by ``iters / max_iters`` (rounded; boundaries stay in
    order, one iteration apart at least, so a decay that starts where the warm-up ends still does), and a
    ``T_max`` that spanned its scheduler spans it again. E.g. the toy MCTformer's 25-iteration warm-up and
    275-iteration cosine (300 iterations) become 8 + 92 for ``iters=100``; a single poly decay ends at ``iters``.
    """
    for i, sched in enumerate(schedulers):
        if sched.get('by_epoch', True):  # mmengine's default
            raise ValueError(f'--iters: param_scheduler[{i}] ({sched.get("type")}) is not iteration-based')
    spans = [(sched.get('begin', 0), min(sched.get('end', max_iters), max_iters)) for sched in schedulers]
    new_point, previous = {}, None
    for point in sorted({p for span in spans for p in span}):
        value = round(point * iters / max_iters)
        new_point[point] = previous = value if previous is None else max(value, previous + 1)
    options = [f'train_cfg.max_iters={iters}']
    for i, (sched, (begin, end)) in enumerate(zip(schedulers, spans)):
        options += [f'param_scheduler.{i}.begin={new_point[begin]}', f'param_scheduler.{i}.end={new_point[end]}']
        if 'T_max' in sched:
            t_max = new_point[end] - new_point[begin] if sched['T_max'] == end - begin else \
                max(1, round(sched['T_max'] * iters / max_iters))
            options.append(f'param_scheduler.{i}.T_max={t_max}')
    return options


#: DeepLab ``k`` of a mask set trains with ``randomness.seed = CAM seed + SEG_SEED_STRIDE * k``
SEG_SEED_STRIDE = 1000


def segmentation_seed(cam_seed: int, index: int) -> int:
    """The training seed (``randomness.seed``) of DeepLab ``index`` (0-based, of ``--seg-seeds``) on the masks of
    the CAM run with seed ``cam_seed``: ``cam_seed + 1000 * index``.

    The first DeepLab keeps the CAM run's seed (as before ``--seg-seeds``, so its work dir is reused). The seeds
    differ between indices and between CAM seeds 0-999; the runs of one CAM seed (baseline, CSD readings) share
    each index's seed, so DeepLab ``index`` of every method starts from the same initialisation and data order
    (a paired comparison, as the single DeepLab was).
    """
    return cam_seed + SEG_SEED_STRIDE * index


def segmentation_dir_name(refiner: str, index: int) -> str:
    """The work dir (inside the CAM run's) of DeepLab ``index``: ``deeplab_<refiner>`` for the first, as before
    ``--seg-seeds``, ``deeplab_<refiner>_segseed<index>`` for the others."""
    return f'deeplab_{refiner}' + (f'_segseed{index}' if index else '')


def aggregate_segmentation(mious: Sequence[float]) -> Dict:
    """A mask set's DeepLab figures: ``seg_miou`` the mean of the val mIoUs of its DeepLabs, ``seg_miou_std``
    their population standard deviation (0 for one DeepLab), ``seg_mious`` every one, in training-seed order."""
    if not mious:
        raise ValueError('no DeepLab val mIoU to aggregate')
    values = [float(v) for v in mious]
    return dict(seg_miou=float(np.mean(values)), seg_miou_std=float(np.std(values)), seg_mious=values)


def data_options(data_root: str, csd: bool) -> List[str]:
    """Points every dataset of a CAM config at ``data_root`` (a CSD config wraps its training dataset)."""
    train_set = 'train_dataloader.dataset.dataset' if csd else 'train_dataloader.dataset'
    keys = [train_set, 'test_dataloader.dataset', 'custom_hooks.0.dataloader.dataset']
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
    scores = dict(seed_miou=100 * total['best_miou'], threshold=float(total['best_threshold']))
    for name in ('single', 'multi'):
        conf = confusion.get(name)
        scores[name] = 100 * float(np.nanmean(confusion_to_iou(conf[best]))) if conf is not None else float('nan')
    return scores


def class_names_of(data_root: str, num_classes: int) -> List[str]:
    """Class names (background first) from ``meta.json`` of a toy-format root, else ``class0..``."""
    meta = osp.join(data_root, 'meta.json')
    if osp.isfile(meta):
        with open(meta) as f:
            names = list(json.load(f).get('classes', []))
        if len(names) == num_classes:
            return names
    return ['background'] + [f'class{i}' for i in range(1, num_classes)]


class Pipeline:
    """The stages of one invocation; :meth:`run_model` runs every stage of one CAM network and seed."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_root = args.data_root
        layout = self.layout = DATASETS[args.dataset]
        if not osp.isfile(osp.join(self.data_root, layout['labels'])):
            log(f'generating the toy dataset in {self.data_root} ({args.dataset} layout)')
            if args.dataset == 'coco':
                convert_coco(make_toy_coco(self.data_root)['ann_files'], self.data_root, progress=False, log=log)
            else:
                make_toy_voc(self.data_root)
        root = self.data_root
        self.labels = load_cls_labels(osp.join(root, layout['labels']))
        self.train_aug = read_split(osp.join(root, layout['train']))
        self.eval_ids = read_split(osp.join(root, layout['eval']))
        self.num_val = len(read_split(osp.join(root, layout['val'])))
        self.num_classes = len(next(iter(self.labels.values()))) + 1
        self.class_names = list(COCO_METAINFO['classes']) if args.dataset == 'coco' else \
            class_names_of(self.data_root, self.num_classes)
        self.palette = class_meta(self.data_root, self.class_names)[1]  # meta.json's colours, else VOC's colour map
        self.gt_dir = osp.join(root, layout['gt_dir'])
        self.cam_options = list(args.cfg_options)
        self.timer = StageTimer()  # wall time by run (work dir) and stage: results.json's stage_seconds

    def iter_options(self, config: str) -> List[str]:
        """``--iters``: the config's schedule stretched to that many iterations (none without ``--iters``)."""
        if self.args.iters is None:
            return []
        cfg = Config.fromfile(config)
        return stretched_schedule_options(cfg.param_scheduler, cfg.train_cfg.max_iters, self.args.iters)

    # ---- stages 0 and 1: CAM networks
    def cam_runs(self, model: str, seed: int) -> List[tuple]:
        """Trains the baseline (+ source bank) and the CSD runs of one model; returns (method, work dir) pairs."""
        baseline_cfg, csd_cfg = (osp.join(REPO, cfg) for cfg in self.layout['models'][model])
        root = osp.join(self.args.work_dir, f'seed{seed}', model)
        base_dir = osp.join(root, 'baseline')
        seed_opts = [f'randomness.seed={seed}']
        if is_complete(osp.join(base_dir, 'cams'), self.train_aug) and source_bank_complete(
                osp.join(base_dir, 'source_bank')):
            log(f'seed {seed} {model}: baseline + source bank complete, skipped')
        else:
            log(f'seed {seed} {model}: stage 0, baseline CAM network -> CAMs -> source bank')
            with self.timer.measure(base_dir, 'cam_training'):
                train(baseline_cfg, base_dir, seed_opts + data_options(self.data_root, False) + self.cam_options
                      + self.iter_options(baseline_cfg))
        runs = [(model, base_dir)]
        for name, *options in [['csd']] + self.args.csd_variant:
            work = osp.join(root, name)
            runs.append((f'{model} + {name}', work))
            if is_complete(osp.join(work, 'cams'), self.train_aug):
                log(f'seed {seed} {model}: {name} complete, skipped')
                continue
            log(f'seed {seed} {model}: stage 1, {name}: CSD training on the source bank -> CAMs')
            with self.timer.measure(work, 'cam_training'):
                train(csd_cfg, work, seed_opts + data_options(self.data_root, True) + self.cam_options
                      + self.iter_options(csd_cfg) + [
                    f'train_dataloader.dataset.source_bank={osp.join(base_dir, "source_bank")}',
                    f'train_dataloader.dataset.seed={seed}'] + options)
        return runs

    def pair_confusion(self, work: str, threshold: float) -> Dict:
        """Seeds at ``threshold``: the shares of the most co-occurring pair's pixels labelled as each other."""
        res = cooccurrence_confusion_of_dir(osp.join(work, 'cams'), self.gt_dir, self.eval_ids, self.labels,
                                            threshold=threshold, top_k=1, class_names=self.class_names)
        pair = res['pairs'][0]
        return dict(pair=f"{pair['a']}/{pair['b']}", a_to_b=float(pair['a_to_b']), b_to_a=float(pair['b_to_a']))

    # ---- stage 3: refinement
    def refiner_config(self, work: str, seed: int, threshold: float) -> dict:
        """The refiner of ``--refiner`` for one run; a trained one is first trained on the run's CAMs."""
        name = self.args.refiner
        config, needs_training = REFINERS[name]
        if config is None:
            return dict(type=SeedRefiner, bg_threshold=threshold)
        cfg = Config.fromfile(osp.join(REPO, config))
        refiner = cfg['refiner'].to_dict()
        if needs_training:
            net_dir = osp.join(work, f'{name}_net')
            if not trained(net_dir):
                log(f'{work}: training the {name} refinement network on the CAMs')
                with self.timer.measure(work, 'refiner_training'):
                    train(osp.join(REPO, config), net_dir, [
                        f'randomness.seed={seed}', f'train_dataloader.dataset.data_root={self.data_root}',
                        f'train_dataloader.dataset.cam_dir={osp.abspath(osp.join(work, "cams"))}'])
            refiner['checkpoint'] = last_checkpoint(net_dir)
        refiner['bg_threshold'] = threshold
        return refiner

    def pseudo_masks(self, work: str, seed: int, threshold: float) -> Dict:
        """Writes the pseudo masks of every train_aug image; returns their mIoU on the evaluation split."""
        out = osp.join(work, f'pseudo_masks_{self.args.refiner}')
        refiner = self.refiner_config(work, seed, threshold)
        with self.timer.measure(work, 'pseudo_masks'):
            counts = export_pseudo_masks(osp.join(work, 'cams'), osp.join(self.data_root, self.layout['img_dir']),
                                         self.train_aug, out, refiner, num_workers=self.args.workers,
                                         progress=not CONSOLE.quiet, num_fg_classes=self.num_classes - 1)
            if counts['written']:
                log(f'{work}: {counts["written"]} pseudo masks written to {out} ({counts["skipped"]} already '
                    'there)')
            res = mask_miou(out, self.gt_dir, self.eval_ids, self.num_classes)
        return dict(mask_miou=100 * res['mIoU'], mask_iou=[round(100 * float(v), 2) for v in res['IoU']], masks=out)

    # ---- stage 4: segmentation
    def segmentation(self, work: str, seed: int, masks: str) -> Dict:
        """Trains ``--seg-seeds`` DeepLabs on the pseudo masks, evaluates each on val (mmseg IoUMetric via
        tools/test.py) and returns their mean val mIoU, each one's, and where they are."""
        runs = [(segmentation_seed(seed, k), osp.join(work, segmentation_dir_name(self.args.refiner, k)))
                for k in range(self.args.seg_seeds)]
        mious = [self.deeplab(work, seg_seed, seg_dir, masks) for seg_seed, seg_dir in runs]
        return dict(**aggregate_segmentation(mious), seg_dir=runs[0][1], seg_seeds=[s for s, _ in runs],
                    seg_dirs=[d for _, d in runs])

    def deeplab(self, work: str, seg_seed: int, seg_dir: str, masks: str) -> float:
        """One DeepLab with training seed ``seg_seed`` in ``seg_dir``: trained unless done (resumed when a
        checkpoint is there), tested unless its ``val_metrics.json`` is; returns its val mIoU."""
        metrics_file = osp.join(seg_dir, 'val_metrics.json')
        if osp.isfile(metrics_file):
            log(f'{seg_dir}: DeepLab (seed {seg_seed}) complete, skipped')
        else:
            data = [f'{loader}.dataset.data_root={self.data_root}' for loader in
                    ('train_dataloader', 'val_dataloader', 'test_dataloader')]
            if not trained(seg_dir):
                log(f'{work}: segmentation, DeepLabV3+ (seed {seg_seed}) on {masks}')
                options = [f'randomness.seed={seg_seed}',
                           f'train_dataloader.dataset.data_prefix.seg_map_path={osp.abspath(masks)}'] + data
                if self.args.seg_iters is not None:
                    it = self.args.seg_iters
                    options += [f'train_cfg.max_iters={it}', f'train_cfg.val_interval={it}',
                                f'param_scheduler.0.end={it}']
                with self.timer.measure(work, 'segmentation_training'):
                    train(osp.join(REPO, self.layout['seg_config']), seg_dir, options)
            with self.timer.measure(work, 'segmentation_test'):
                run_tool('test.py', [osp.join(REPO, self.layout['seg_config']), last_checkpoint(seg_dir),
                                     '--work-dir', seg_dir, '--out-metrics', metrics_file, '--cfg-options', *data],
                         seg_dir)
        with open(metrics_file) as f:
            metrics = json.load(f)
        return float(metrics['mIoU'])

    def run_model(self, model: str, seed: int) -> List[Dict]:
        rows = []
        for method, work in self.cam_runs(model, seed):
            with self.timer.measure(work, 'seeds'):
                row = dict(method=method, seed=seed, work_dir=work,
                           **seed_scores(osp.join(work, 'cams'), self.gt_dir, self.eval_ids, self.labels,
                                         self.num_classes))
                row.update(self.pair_confusion(work, row['threshold']))
            log(f"seed {seed} {method}: seed mIoU {row['seed_miou']:.2f} (single {row['single']:.2f}, "
                f"multi {row['multi']:.2f}) at t={row['threshold']:.2f}; {row['pair']}: "
                f"{row['a_to_b']:.2f} / {row['b_to_a']:.2f} % confused")
            if UNTIL.index(self.args.until) >= 1:
                row.update(self.pseudo_masks(work, seed, row['threshold']))
                log(f"seed {seed} {method}: pseudo-mask mIoU {row['mask_miou']:.2f} ({self.args.refiner})")
            if UNTIL.index(self.args.until) >= 2:
                row.update(self.segmentation(work, seed, row['masks']))
                spread = '' if len(row['seg_mious']) == 1 else \
                    f" ± {row['seg_miou_std']:.2f} over {len(row['seg_mious'])} DeepLab seeds (" + \
                    ', '.join(f'{v:.2f}' for v in row['seg_mious']) + ')'
                log(f"seed {seed} {method}: segmentation val mIoU {row['seg_miou']:.2f}{spread}")
            rows.append(row)
        return rows


def write_figures(rows: List[Dict], pipeline: 'Pipeline', num_images: int = 4) -> List[str]:
    """For each seed and model: ``<work-dir>/seed<s>/<model>/figure.png``, the first ``num_images`` multi-label
    images of the evaluation split with one row per run (baseline, CSD, variants): image, CAMs, seeds at the
    run's best threshold, pseudo mask (when made) and ground truth (tools/analysis/visualize.py draws the same)."""
    import mmcv
    ids = multi_label_ids(pipeline.eval_ids, pipeline.labels, num_images)
    if not ids:
        return []
    img_dir = osp.join(pipeline.data_root, pipeline.layout['img_dir'])
    height = mmcv.imread(osp.join(img_dir, ids[0] + '.jpg')).shape[0]
    written = []
    for folder in dict.fromkeys(osp.dirname(r['work_dir']) for r in rows):
        runs = [dict(name=osp.basename(r['work_dir']), cam_dir=osp.join(r['work_dir'], 'cams'),
                     threshold=r['threshold'], mask_dir=r.get('masks')) for r in rows
                if osp.dirname(r['work_dir']) == folder]
        grid = draw_result_grid(ids, runs, img_dir, pipeline.class_names, pipeline.palette, pipeline.gt_dir,
                                scale=max(1, 192 // height))  # titles readable on tiny images
        out = osp.join(folder, 'figure.png')
        write_png(out, np.ascontiguousarray(grid[..., ::-1]))
        written.append(out)
    return written


COLUMNS = [('seed_miou', 'seed mIoU'), ('single', 'single-label'), ('multi', 'multi-label'), ('threshold', 'best t'),
           ('a_to_b', '{a}->{b} % (seeds)'), ('b_to_a', '{b}->{a} % (seeds)'),
           ('mask_miou', 'mask mIoU'), ('seg_miou', 'segmentation mIoU (val)')]


def markdown_table(rows: List[Dict]) -> str:
    """The results table: a line per run and seed, a bold ``mean ± std`` line per run over the seeds (when there
    are several), and a footnote that says what each ± is over. With several DeepLabs per mask set
    (``--seg-seeds``) a run's segmentation cell is their mean ± std."""
    a, b = (rows[0].get('pair', 'a/b').split('/') + ['b'])[:2] if rows else ('a', 'b')
    cols = [(k, title.format(a=a, b=b)) for k, title in COLUMNS if any(k in r for r in rows)]
    num_deeplabs = max((len(r.get('seg_mious', [])) for r in rows), default=0)
    if num_deeplabs > 1:
        cols = [(k, f'{t}, mean ± std of {num_deeplabs} DeepLabs' if k == 'seg_miou' else t) for k, t in cols]
    lines = ['| method | seed | ' + ' | '.join(t for _, t in cols) + ' |', '|---|---|' + '---|' * len(cols)]

    def cell(r: Dict, k: str) -> str:
        if k not in r:
            return ''
        if k == 'seg_miou' and len(r.get('seg_mious', [])) > 1:
            return f"{r[k]:.2f} ± {r['seg_miou_std']:.2f}"
        return f'{r[k]:.2f}'

    for r in rows:
        lines.append(f"| {r['method']} | {r['seed']} | " + ' | '.join(cell(r, k) for k, _ in cols) + ' |')
    several_seeds = False
    for method in dict.fromkeys(r['method'] for r in rows):
        sel = [r for r in rows if r['method'] == method]
        if len(sel) > 1:
            several_seeds = True
            cells = [f'{np.mean([r[k] for r in sel]):.2f} ± {np.std([r[k] for r in sel]):.2f}'
                     if k != 'threshold' and all(k in r for r in sel) else '' for k, _ in cols]
            lines.append(f'| **{method}** | mean ± std | ' + ' | '.join(cells) + ' |')
    notes = []
    if num_deeplabs > 1:
        notes.append(f'Segmentation cell of a run: mean ± population std over its {num_deeplabs} DeepLabs trained '
                     f'on the same pseudo masks with training seeds s + {SEG_SEED_STRIDE} k (s: the run\'s seed, '
                     f'k < {num_deeplabs}; --seg-seeds).')
    if several_seeds:
        notes.append('**mean ± std** lines: mean ± population std over the seeds of the CAM runs' + (
            ' (segmentation: of each run\'s DeepLab mean)' if num_deeplabs > 1 else '') + '.')
    for note in notes:  # a paragraph each, under the table
        lines += ['', note]
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    try:  # one pipeline per work dir (a rerun while the previous one still runs is refused, naming its pid)
        lock_work_dir(args.work_dir, what='pipeline')
    except WorkDirLockedError as e:
        raise SystemExit(f'error: {e}')
    CONSOLE.quiet = args.quiet
    TRAIN_FLAGS[:] = ['--tensorboard'] if args.tensorboard else []
    start = time.time()
    pipeline = Pipeline(args)
    rows = []
    for seed in args.seeds:
        for model in args.models:
            rows += pipeline.run_model(model, seed)
    table = markdown_table(rows)
    # the table first: a figure that cannot be drawn must not cost the results of the whole run
    atomic_write_bytes(osp.join(args.work_dir, 'results.md'), (table + '\n').encode())
    with pipeline.timer.measure(args.work_dir, 'figures'):
        figures = write_figures(rows, pipeline)
    log('baseline vs CSD figures: ' + ', '.join(figures))
    result = dict(data_root=args.data_root, seed_and_mask_split='train', num_seed_and_mask_images=len(
        pipeline.eval_ids), segmentation_split='val', num_segmentation_images=pipeline.num_val,
                  refiner=args.refiner, until=args.until, rows=rows, wall_time_s=round(time.time() - start, 1),
                  stage_seconds=pipeline.timer.totals(), stage_seconds_by_run={
                      osp.relpath(run, args.work_dir): pipeline.timer.of_run(run) for run in pipeline.timer.seconds},
                  figures=figures)
    atomic_write_bytes(osp.join(args.work_dir, 'results.json'), json.dumps(result, indent=1).encode())
    if not args.quiet:
        print(f'\nmIoU (%): seeds and pseudo masks ({args.refiner}) on the {len(pipeline.eval_ids)} train images, '
              f'segmentation on the {pipeline.num_val} val images of {args.data_root}\n')
    print(table)
    if not args.quiet:
        stages = ', '.join(f'{stage} {spent:.0f} s' for stage, spent in result['stage_seconds'].items())
        print(f'\nwritten: {args.work_dir}/results.json, results.md; wall time {result["wall_time_s"]:.0f} s'
              + (f' ({stages})' if stages else ''))
    return result


if __name__ == '__main__':
    main()
