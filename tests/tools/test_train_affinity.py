"""End to end: the stock tools/train.py trains PSA's AffinityNet from the toy config on CAM files, then
tools/make_pseudo_masks.py refines the CAMs with the trained checkpoint (real Runner, real files; both tools
run in this process to keep the test fast)."""
import re
from pathlib import Path

import numpy as np

import csd_mm  # noqa: F401
from csd_mm.utils.fileio import read_png

REPO = Path(__file__).resolve().parents[2]
CFG = REPO / 'configs/toy/aff_resnet18_1xb8_200it_toy_64x64.py'


def test_train_affinity_then_refine(tmp_path, run_tool_inprocess, toy_voc_with_stand_in_cams):
    root, cam_dir, ids = toy_voc_with_stand_in_cams
    work = tmp_path / 'work'
    log = run_tool_inprocess([
        REPO / 'tools/train.py', CFG, '--work-dir', work, '--cfg-options',
        f'train_dataloader.dataset.cam_dir={cam_dir}',
        'train_dataloader.batch_size=3', 'train_cfg.max_iters=2', 'param_scheduler.0.end=2',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1'])
    log += (next(work.glob('*/*.log'))).read_text()
    assert re.search(r'Iter\(train\) \[2/2\].*loss_aff: [0-9.]+', log)
    assert (work / 'iter_2.pth').is_file()
    label_dir = Path(f'{cam_dir}_conf_la4_ha32')
    assert sorted(p.stem for p in label_dir.glob('*.png')) == sorted(ids)  # every sample's labels cached
    out = tmp_path / 'masks'
    log = run_tool_inprocess([
        REPO / 'tools/make_pseudo_masks.py', cam_dir, root / 'JPEGImages', out, '--refiner', CFG,
        '--cfg-options', f'refiner.checkpoint={work / "iter_2.pth"}', 'refiner.logt=4', '--gt-dir',
        root / 'SegmentationClassAug', '--num-classes', '6', '--no-progress'])
    assert re.search(r'mask mIoU: [0-9.]+', log)
    for img_id in ids:
        mask = read_png(str(out / f'{img_id}.png'))
        assert mask.shape == (64, 64) and set(np.unique(mask).tolist()) <= set(range(6))
