"""Tests of tools/analysis/eval_seeds.py: the CLI on a few CAM files and GT PNGs."""
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest

from csd_mm.evaluation.functional import default_thresholds, summarize_sweep, sweep_confusion
from csd_mm.utils import cam_path, save_cam

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'analysis' / 'eval_seeds.py'


def _write_data(tmp_path, n=3, seed=0):
    rng = np.random.default_rng(seed)
    cam_dir, gt_dir = tmp_path / 'cams', tmp_path / 'gt'
    gt_dir.mkdir()
    conf = 0
    ids = [f'2007_{i:06d}' for i in range(n)]
    for i, img_id in enumerate(ids):
        h, w = 6 + i, 9 - i
        keys = np.sort(rng.choice(20, size=i, replace=False))
        cam = rng.random((i, h, w)).astype(np.float32)
        gt = rng.integers(0, 21, size=(h, w)).astype(np.uint8)
        gt[0, :3] = 255
        save_cam(cam_path(str(cam_dir), img_id), cam, keys)
        mmcv.imwrite(gt, str(gt_dir / f'{img_id}.png'))
        # what the file holds: float16 maps
        cam16 = cam.astype(np.float16).astype(np.float32)
        conf = conf + sweep_confusion(cam16, keys, gt, 21, default_thresholds())
    split = tmp_path / 'train.txt'
    split.write_text('\n'.join(ids) + '\n')
    return cam_dir, gt_dir, split, ids, summarize_sweep(conf, default_thresholds())


def _load_tool():
    spec = importlib.util.spec_from_file_location('eval_seeds', SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_cli_prints_the_pure_functions_miou(tmp_path):
    cam_dir, gt_dir, split, ids, exp = _write_data(tmp_path)
    out = tmp_path / 'res.json'
    proc = subprocess.run([sys.executable, str(SCRIPT), str(cam_dir), str(gt_dir), '--split', str(split),
                           '--num-classes', '21', '--out', str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    best = re.search(r'best threshold: ([0-9.]+)\s+best mIoU: ([0-9.]+)', proc.stdout)
    assert best, proc.stdout
    assert float(best.group(1)) == pytest.approx(exp['best_threshold'])
    assert best.group(2) == f'{exp["best_miou"] * 100:.2f}'
    assert 't=0.59' in proc.stdout and '3 images' in proc.stdout
    data = json.loads(out.read_text())
    assert data['best_miou'] == pytest.approx(exp['best_miou']) and data['num_images'] == 3
    assert [m for _, m in data['curve']] == pytest.approx([m for _, m in exp['curve']])

def test_cli_errors_and_classes_from(tmp_path, capsys):
    tool = _load_tool()
    cam_dir, gt_dir, split, ids, exp = _write_data(tmp_path, seed=1)
    names = tmp_path / 'classes.txt'
    names.write_text('\n'.join(['background'] + [f'c{i}' for i in range(1, 21)]))
    tool.main([str(cam_dir), str(gt_dir), '--split', str(split), '--classes-from', str(names), '--no-progress'])
    printed = capsys.readouterr().out
    assert f'best mIoU: {exp["best_miou"] * 100:.2f}' in printed and 'c20' in printed
    assert tool.load_class_names('PascalVOCDataset')[:2] == ['background', 'aeroplane']

    mmcv.imwrite(np.zeros((4, 4), np.uint8), str(gt_dir / f'{ids[2]}.png'))
    with pytest.raises(SystemExit, match=f'{ids[2]}.png has size'):
        tool.main([str(cam_dir), str(gt_dir), '--split', str(split), '--no-progress'])

    # a CAM missing for an id of the split: a clear error naming the file
    (cam_dir / f'{ids[1]}.npz').unlink()
    with pytest.raises(SystemExit, match=f'1 of 3 images have no CAM file in .*{ids[1]}.npz'):
        tool.main([str(cam_dir), str(gt_dir), '--split', str(split), '--no-progress'])
