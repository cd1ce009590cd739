"""Data loading of CSD training: data_time / step time in a real training, and copy-paste's share of a sample.

    python benchmarks/bench_data.py [--size tiny|toy|voc] [--work-dir work_dirs/benchmarks]

A synthetic VOC-layout dataset (``csd_mm.datasets.toy.make_toy_voc``: 64x64 images for ``toy``, 500x500 for
``voc``) and a source bank built from its masks stand in for VOC; the CSD configs run as they are (their
pipelines, batch sizes and dataloader worker counts) with the real MMEngine Runner for a few iterations, and the
mean ``data_time`` / ``time`` that mmengine's IterTimerHook logs is reported after the first iterations (worker
start-up). The VOC configs' heads are narrowed to the synthetic dataset's 5 classes (the data path is the same).
Separately, on the CSD dataset of the same config, the time spent in ``CopyPaste`` over the time of the whole
``CSDDataset.__getitem__`` of paired items (both images loaded and augmented, pasted, packed).
Targets (docs/benchmarks.md): data_time / step < 10%; copy-paste <= 10% of preparing a CSD sample.
"""
import copy
import os.path as osp
import time
from typing import Callable, Dict, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import csd_mm  # noqa: F401
from csd_mm.datasets import build_source_bank, load_cls_labels, read_split
from csd_mm.datasets.toy import make_toy_voc
from csd_mm.datasets.transforms import CopyPaste
from _common import section, standalone_main

CONFIGS = dict(
    toy=('configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py',
         'configs/toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py'),
    voc=('configs/csd/resnet50_csd_voc.py', 'configs/csd/mctformer_csd_voc.py'))
# size: (image side, train images, training iterations, iterations skipped as warm-up, CSD items timed)
SETTINGS = dict(tiny=(64, 24, 4, 1, 8), toy=(64, 200, 40, 5, 100), voc=(500, 96, 25, 5, 40))
REDUCED_CPU_BATCH = 2  # --size voc --device cpu: the VOC configs' pipelines and workers, batch 2, 4 iterations
REDUCED_CPU_ITERS = (4, 1)


def toy_dataset(work_dir: str, side: int, num_train: int) -> Dict:
    """The synthetic dataset and its source bank (from its masks), made once under ``work_dir``."""
    root = osp.join(work_dir, f'toy_voc_{side}_{num_train}')
    summary = make_toy_voc(root, num_train=num_train, num_val=2, size=side, seed=0)
    ids = read_split(osp.join(root, 'ImageSets/Segmentation/train_aug.txt'))
    labels = load_cls_labels(osp.join(root, 'cls_labels.npy'))
    bank = osp.join(root, 'source_bank')
    build_source_bank(bank, ids, np.stack([labels[i] for i in ids]),
                      pseudo_mask_dir=osp.join(root, 'SegmentationClassAug'), progress=False)
    return dict(root=root, bank=bank, classes=tuple(summary['classes']))


def csd_config(config: str, data: Dict, batch: Optional[int] = None) -> Config:
    """The config with its CSD dataset pointed at the synthetic data (pipelines and workers unchanged)."""
    cfg = Config.fromfile(config)
    csd = cfg.train_dataloader.dataset
    csd.source_bank = data['bank']
    csd.dataset.update(data_root=data['root'], ann_file='ImageSets/Segmentation/train_aug.txt',
                       data_prefix=dict(img_path='JPEGImages'), label_source='npy', label_file='cls_labels.npy',
                       metainfo=dict(classes=data['classes']))
    if batch:
        cfg.train_dataloader.batch_size = batch
    num_classes = len(data['classes']) - 1
    if cfg.model.get('num_classes') is not None:
        cfg.model.num_classes = num_classes
    if cfg.model.get('head') is not None and 'num_classes' in cfg.model.head:
        cfg.model.head.num_classes = num_classes
    if cfg.model.get('backbone') is not None and 'num_classes' in cfg.model.backbone:
        cfg.model.backbone.num_classes = num_classes
    return cfg


def data_time_share(config: str, data: Dict, work_dir: str, iters: int, skip: int, device: str,
                    batch: Optional[int] = None) -> Dict:
    """Trains ``iters`` iterations with the Runner; mean data_time and step time after ``skip`` iterations."""
    cfg = csd_config(config, data, batch)
    name = osp.splitext(osp.basename(config))[0]
    cfg.work_dir = osp.join(work_dir, 'data_time', name)
    if 'Epoch' in str(cfg.train_cfg.get('type', 'EpochBasedTrainLoop')):
        # a VOC epoch is 661 iterations, the synthetic set's 6: without restarts, as inside a VOC epoch
        cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    else:  # the toy configs' own iteration loop (and its epoch restarts), shortened
        cfg.train_cfg.update(max_iters=iters, val_interval=iters + 1)
    cfg.param_scheduler = []
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.custom_hooks = []
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=max(iters // 2, 1), log_metric_by_epoch=False)
    cfg.resume, cfg.load_from = False, None
    if device == 'cpu':
        cfg.env_cfg = dict(cfg.get('env_cfg', {}), cudnn_benchmark=False)
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    data_t = np.asarray(hub.get_scalar('train/data_time').data[0])[skip:]
    step_t = np.asarray(hub.get_scalar('train/time').data[0])[skip:]
    loader = cfg.train_dataloader
    return dict(config=config, batch=loader.batch_size, workers=loader.get('num_workers', 0),
                persistent=bool(loader.get('persistent_workers', False)), data_time=float(data_t.mean()),
                step_time=float(step_t.mean()), share=float(data_t.mean() / step_t.mean()))


class _TimedTransform:
    """Wraps a transform and accumulates the seconds spent in it."""

    def __init__(self, transform: Callable) -> None:
        self.transform, self.seconds = transform, 0.0

    def __call__(self, results: Dict) -> Dict:
        start = time.perf_counter()
        out = self.transform(results)
        self.seconds += time.perf_counter() - start
        return out


def copy_paste_share(config: str, data: Dict, items: int) -> Dict:
    """CopyPaste's time over the whole ``__getitem__`` time of the first ``items`` paired CSD items."""
    cfg = csd_config(config, data)
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    dataset.full_init()
    transforms = dataset.paste_pipeline.transforms
    pos = next(i for i, t in enumerate(transforms) if isinstance(t, CopyPaste))
    timer = transforms[pos] = _TimedTransform(transforms[pos])
    paired = [i for i in range(len(dataset)) if dataset.is_paired(i)][:items]
    dataset[paired[0]]  # warm-up: file system caches, lazy imports
    timer.seconds = 0.0
    start = time.perf_counter()
    for i in paired:
        dataset[i]
    total = time.perf_counter() - start
    return dict(items=len(paired), per_item=total / len(paired), copy_paste=timer.seconds / len(paired),
                share=timer.seconds / total)


def run(size: str, device: str, work_dir: str, log: Callable = print) -> Dict:
    side, num_train, iters, skip, items = SETTINGS[size]
    data = toy_dataset(work_dir, side, num_train)
    batch = REDUCED_CPU_BATCH if size == 'voc' and device == 'cpu' else (4 if size == 'tiny' else None)
    if size == 'voc' and device == 'cpu':
        iters, skip = REDUCED_CPU_ITERS
    rows, targets = [], {}
    torch.manual_seed(0)
    for config in CONFIGS['voc' if size == 'voc' else 'toy']:
        name = osp.basename(config)
        # no default scope is set anywhere here (the configs' default_scope is None, as with tools/train.py):
        # mmpretrain's RandAugment in the MCTformer pipeline builds its ops by name, which an 'mmseg' or
        # 'mmengine' scope breaks
        d = data_time_share(config, data, work_dir, iters, skip, device, batch)
        log(f'  {name}: data_time {d["data_time"] * 1000:.1f} ms of {d["step_time"] * 1000:.1f} ms '
            f'({d["share"] * 100:.1f}%), {d["workers"]} workers')
        c = copy_paste_share(config, data, items)
        log(f'  {name}: CopyPaste {c["copy_paste"] * 1000:.2f} ms of {c["per_item"] * 1000:.2f} ms per paired '
            f'item ({c["share"] * 100:.1f}%)')
        rows.append([f'{name} (batch {d["batch"]}, {d["workers"]} workers'
                     f'{", persistent" if d["persistent"] else ""})',
                     f'{d["data_time"] * 1000:.1f} ms / {d["step_time"] * 1000:.1f} ms',
                     f'{d["share"] * 100:.1f}%',
                     f'{c["copy_paste"] * 1000:.2f} ms / {c["per_item"] * 1000:.2f} ms', f'{c["share"] * 100:.1f}%'])
        targets[f'{name}: data_time < 10% of the step'] = d['share'] < 0.10
        targets[f'{name}: copy-paste <= 10% of a CSD sample'] = c['share'] <= 0.10
    notes = [f'{iters} training iterations with the real Runner on a synthetic {side}x{side} VOC-layout dataset '
             f'({num_train} images, source bank from its masks); means over the iterations after the first '
             f'{skip}. Copy-paste: the first {items} paired items of the same CSD dataset, in this process.']
    if batch and size == 'voc':
        notes.append(f'Reduced CPU run: batch {batch} instead of the configs\' (16 and 8), {iters} iterations.')
    return section('Data: data_time / step, copy-paste / CSD sample (`benchmarks/bench_data.py`)',
                   ['config', 'data_time / step time', 'data share', 'CopyPaste / paired item', 'copy-paste share'],
                   rows, notes, targets)


if __name__ == '__main__':
    standalone_main(run, __doc__, SETTINGS)
