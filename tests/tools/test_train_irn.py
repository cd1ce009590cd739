"""End to end: the stock tools/train.py trains IRN's BoundaryNet from the toy config on CAM files, then
tools/make_pseudo_masks.py refines the CAMs with the trained checkpoint (real Runner, real files; both tools
run in this process)."""
import re
from pathlib import Path

import numpy as np
import pytest

import csd_mm  # noqa: F401
from csd_mm.utils.fileio import read_png

REPO = Path(__file__).resolve().parents[2]
CFG = REPO / 'configs/toy/irn_resnet18_1xb8_200it_toy_64x64.py'


@pytest.mark.slow
def test_train_irn_then_refine(tmp_path, run_tool_inprocess, toy_voc_with_stand_in_cams):
    root, cam_dir, ids = toy_voc_with_stand_in_cams
    work = tmp_path / 'work'
    log = run_tool_inprocess([
        REPO / 'tools/train.py', CFG, '--work-dir', work, '--cfg-options',
        f'train_dataloader.dataset.cam_dir={cam_dir}', 'train_dataloader.batch_size=3',
        'train_cfg.max_iters=4', 'param_scheduler.0.end=4', 'default_hooks.checkpoint.interval=4',
        'default_hooks.logger.interval=1'])
    assert 'Iter(train) [4/4]' in log
    log = (next(work.glob('*/*.log'))).read_text()
    losses = [float(v) for v in re.findall(r'Iter\(train\) \[\d/4\].*? loss_aff: ([0-9.]+)', log)]
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert (work / 'iter_4.pth').is_file()
    label_dir = Path(f'{cam_dir}_irn_conf_fg0.3_bg0.05')  # IRN's confident labels
    assert sorted(p.stem for p in label_dir.glob('*.png')) == sorted(ids)  # every sample's labels cached
    out = tmp_path / 'masks'
    log = run_tool_inprocess([
        REPO / 'tools/make_pseudo_masks.py', cam_dir, root / 'JPEGImages', out, '--refiner', CFG,
        '--cfg-options', f'refiner.checkpoint={work / "iter_4.pth"}', 'refiner.exp_times=4', '--gt-dir',
        root / 'SegmentationClassAug', '--num-classes', '6', '--no-progress'])
    assert re.search(r'mask mIoU: [0-9.]+', log)
    for img_id in ids:
        gt = read_png(str(root / 'SegmentationClassAug' / f'{img_id}.png'))
        mask = read_png(str(out / f'{img_id}.png'))
        present = {0} | {int(v) for v in np.unique(gt) if 0 < v < 255}
        assert mask.shape == (64, 64) and set(np.unique(mask).tolist()) <= present  # only the image's classes
