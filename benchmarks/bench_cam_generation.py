"""CAM generation (multi-scale + flip): wall time against the bare model forwards, and peak RSS over images.

    python benchmarks/bench_cam_generation.py [--size tiny|toy|voc] [--device cpu|cuda]

The CAM pass of ``CAMGenerationHook`` (the config's ``cam_dataloader`` with its workers, ``model.test_step``,
``CAMFileWriter`` saving every image on its thread) over a synthetic VOC-layout dataset (``make_toy_voc``: 64x64
for ``toy``, 500x500 for ``voc``), random init, against the model's ``cam_score_fn`` alone over the same scaled
and flipped inputs (the compute that cannot be hidden). The loader's start-up (its first batch) is reported apart
and left out of the ratio. The largest RSS of the process up to the first 100 images and over all of them (CAMs
are streamed to disk, so it should stay flat). Targets (docs/benchmarks.md): (wall - start-up) / bare <= 1.25;
peak RSS flat from 100 to 1,000 images.
"""
import os.path as osp
import shutil
import time
from typing import Callable, Dict

import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import MODELS

import csd_mm  # noqa: F401
from csd_mm.utils.cam_io import CAMFileWriter
from csd_mm.models.cam import _resize_image
from _common import rss_mib, section, standalone_main
from bench_data import toy_dataset

CONFIGS = dict(toy=('configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py',
                    'configs/toy/mctformer_tiny_1xb16_300it_toy_64x64.py'),
               voc=('configs/resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py',
                    'configs/mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py'))
# size: (image side, images, images of the first RSS reading); --size voc --device cpu: REDUCED_CPU
SETTINGS = dict(tiny=(64, 6, 3), toy=(64, 1000, 100), voc=(500, 1000, 100))
REDUCED_CPU = (500, 3, 1)


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def measure(config: str, data: Dict, num: int, first: int, device: str, out_dir: str) -> Dict:
    cfg = Config.fromfile(config)
    loader_cfg = cfg.cam_dataloader.copy()
    loader_cfg.dataset.update(data_root=data['root'], ann_file='ImageSets/Segmentation/train_aug.txt',
                              data_prefix=dict(img_path='JPEGImages'), label_source='npy',
                              label_file='cls_labels.npy', metainfo=dict(classes=data['classes']))
    num_classes = len(data['classes']) - 1
    for part in (cfg.model, cfg.model.get('head') or {}, cfg.model.get('backbone') or {}):
        if 'num_classes' in part:
            part['num_classes'] = num_classes
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device).eval()
    shutil.rmtree(out_dir, ignore_errors=True)
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(loader_cfg.dataset)
    dataset = dataset.get_subset(list(range(min(num, len(dataset)))))
    loader_cfg.update(dataset=dataset, sampler=dict(type='DefaultSampler', shuffle=False, round_up=False))
    loader_cfg.setdefault('batch_size', 1)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    tc = model.test_cfg
    scales, flip, mode = tc.get('scales', (1.0, )), tc.get('flip', True), tc.get('resize_mode', 'bicubic')
    bare, rss_first, rss_all, done, startup = 0.0, 0.0, 0.0, 0, None
    with torch.no_grad():  # warm-up, not timed: kernel selection and caches for the scales' shapes
        model.test_step(next(iter(Runner.build_dataloader(dict(loader_cfg, num_workers=0), seed=0))))
    _sync(device)
    start = time.perf_counter()
    with torch.no_grad(), CAMFileWriter(out_dir) as writer:
        for batch in loader:  # the loop of CAMGenerationHook.generate
            if startup is None:  # the loader's workers starting and the first batch: once per pass
                startup = time.perf_counter() - start
            writer.submit(model.test_step(batch))
            done += len(batch['inputs'])
            rss = rss_mib()  # the largest current RSS up to the first images, and over all of them
            rss_all = max(rss_all, rss)
            if done <= first:
                rss_first = rss_all
    _sync(device)
    wall = time.perf_counter() - start
    # the bare compute: cam_score_fn on the same scaled (and flipped) inputs, one image at a time
    with torch.no_grad():
        for batch in Runner.build_dataloader(loader_cfg, seed=0):
            inputs = model.data_preprocessor(batch, False)['inputs']
            scaled = []
            for s in scales:
                x = _resize_image(inputs[:1], float(s), mode)
                scaled.append(torch.cat([x, x.flip(-1)]) if flip else x)
            _sync(device)
            t0 = time.perf_counter()
            for x in scaled:
                model.cam_score_fn(x)
            _sync(device)
            bare += time.perf_counter() - t0
    return dict(config=config, images=done, wall=wall, bare=bare, ratio=(wall - startup) / bare, startup=startup,
                rss_first=rss_first,
                rss_all=rss_all, workers=loader_cfg.get('num_workers', 0), scales=tuple(scales), flip=flip)


def run(size: str, device: str, work_dir: str, log: Callable = print) -> Dict:
    side, num, first = REDUCED_CPU if size == 'voc' and device == 'cpu' else SETTINGS[size]
    data = toy_dataset(work_dir, side, max(num, 24))
    rows, targets = [], {}
    for config in CONFIGS['voc' if size == 'voc' else 'toy']:
        name = osp.basename(config)
        r = measure(config, data, num, first, device, osp.join(work_dir, 'cam_generation', name))
        log(f'  {name}: {r["images"]} images in {r["wall"]:.1f} s ({r["startup"]:.1f} s to the first batch), bare '
            f'forwards {r["bare"]:.1f} s ({r["ratio"]:.2f}x after start-up); max RSS {r["rss_first"]:.0f} -> '
            f'{r["rss_all"]:.0f} MiB')
        rows.append([f'{name} (scales {r["scales"]}, flip {r["flip"]}, {r["workers"]} workers)',
                     str(r['images']), f'{r["wall"]:.1f} s', f'{r["startup"]:.1f} s', f'{r["bare"]:.1f} s',
                     f'{r["ratio"]:.2f}x',
                     f'{r["rss_first"]:.0f} / {r["rss_all"]:.0f} MiB'])
        targets[f'{name}: (wall - start-up) / bare forwards <= 1.25'] = r['ratio'] <= 1.25
        targets[f'{name}: RSS flat (< +5%) from {first} to {r["images"]} images'] = \
            r['rss_all'] <= 1.05 * r['rss_first']
    notes = [f'Synthetic {side}x{side} VOC-layout images, random init; wall: the CAM hook\'s loop (dataloader, '
             '`test_step`, `CAMFileWriter` saving on its thread) after one untimed warm-up image; start-up: its '
             'first batch (worker processes starting), paid once per pass and left out of the ratio; bare: '
             '`cam_score_fn` alone on the same scaled inputs. RSS: the largest '
             'current RSS of the process (sampled after every batch) up to the first images and over all of '
             'them; it includes whatever ran before in the process, so its growth is what speaks.']
    if size == 'voc' and device == 'cpu':
        notes.append(f'Reduced CPU run: {num} images.')
    return section('CAM generation (`benchmarks/bench_cam_generation.py`)',
                   ['config', 'images', 'wall', 'start-up', 'bare forwards', '(wall - start-up) / bare',
                    'max RSS first / all'],
                   rows, notes, targets)


if __name__ == '__main__':
    standalone_main(run, __doc__, SETTINGS)
