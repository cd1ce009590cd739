"""End to end: the stock tools/train.py trains IRN's BoundaryNet from the toy config on CAM files, then
tools/make_pseudo_masks.py refines the CAMs with the trained checkpoint (real Runner, real files; both tools
run in this process, with the helper of test_train_affinity.py)."""
import importlib.util
import re
from pathlib import Path

import numpy as np

import csd_mm  # noqa: F401
from csd_mm.datasets import make_toy_voc
from csd_mm.utils.cam_io import cam_path, save_cam
from csd_mm.utils.fileio import read_png

REPO = Path(__file__).resolve().parents[2]
CFG = REPO / 'configs/toy/irn_resnet18_1xb8_200it_toy_64x64.py'

_spec = importlib.util.spec_from_file_location('test_train_affinity', Path(__file__).parent / 'test_train_affinity.py')
_aff = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_aff)
run = _aff.run  # runs a tool's main() with a command line, returns what it printed


def test_train_irn_then_refine(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / 'data/toy_voc'
    make_toy_voc(str(root), num_train=6, num_val=1, seed=5)
    ids = (root / 'ImageSets/Segmentation/train_aug.txt').read_text().split()
    # CAMs that roughly cover the ground-truth objects (stand-ins for a CAM network's output)
    rng = np.random.default_rng(0)
    cam_dir = tmp_path / 'cams'
    for img_id in ids:
        gt = read_png(str(root / 'SegmentationClassAug' / f'{img_id}.png'))
        keys = np.array(sorted(v - 1 for v in np.unique(gt) if 0 < v < 255), dtype=np.int64)
        cam = np.stack([(gt == k + 1) * 0.8 for k in keys]).astype(np.float32) if keys.size else \
            np.zeros((0, ) + gt.shape, np.float32)
        cam = np.clip(cam + rng.random(cam.shape).astype(np.float32) * 0.2, 0, 1)
        save_cam(cam_path(str(cam_dir), img_id), cam, keys)
    work = tmp_path / 'work'
    log = run([REPO / 'tools/train.py', CFG, '--work-dir', work, '--cfg-options',
               f'train_dataloader.dataset.cam_dir={cam_dir}', 'train_dataloader.batch_size=3',
               'train_cfg.max_iters=4', 'param_scheduler.0.end=4', 'default_hooks.checkpoint.interval=4',
               'default_hooks.logger.interval=1'], monkeypatch, capsys)
    assert 'Iter(train) [4/4]' in log
    log = (next(work.glob('*/*.log'))).read_text()
    losses = [float(v) for v in re.findall(r'Iter\(train\) \[\d/4\].*? loss_aff: ([0-9.]+)', log)]
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert (work / 'iter_4.pth').is_file()
    label_dir = Path(f'{cam_dir}_conf_la4_ha32')
    assert sorted(p.stem for p in label_dir.glob('*.png')) == sorted(ids)  # every sample's labels cached
    out = tmp_path / 'masks'
    log = run([REPO / 'tools/make_pseudo_masks.py', cam_dir, root / 'JPEGImages', out, '--refiner', CFG,
               '--cfg-options', f'refiner.checkpoint={work / "iter_4.pth"}', 'refiner.exp_times=4', '--gt-dir',
               root / 'SegmentationClassAug', '--num-classes', '6', '--no-progress'], monkeypatch, capsys)
    assert re.search(r'mask mIoU: [0-9.]+', log)
    for img_id in ids:
        gt = read_png(str(root / 'SegmentationClassAug' / f'{img_id}.png'))
        mask = read_png(str(out / f'{img_id}.png'))
        present = {0} | {int(v) for v in np.unique(gt) if 0 < v < 255}
        assert mask.shape == (64, 64) and set(np.unique(mask).tolist()) <= present  # only the image's classes
