"""Tests of tools/make_pseudo_masks.py: the CLI with the built-in refiners and with a config file."""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import csd_mm  # noqa: F401
from csd_mm.evaluation.functional.seed_sweep import seed_from_cam
from csd_mm.utils.cam_io import cam_path, load_cam, save_cam
from csd_mm.utils.fileio import read_png, write_png

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location('make_pseudo_masks', ROOT / 'tools' / 'make_pseudo_masks.py')
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


def _data(tmp_path):
    rng = np.random.default_rng(1)
    cam_dir, img_dir, gt_dir = tmp_path / 'cams', tmp_path / 'imgs', tmp_path / 'gt'
    ids = ['i0', 'i1', 'i2']
    for i, img_id in enumerate(ids):
        img = np.full((20, 24, 3), 50, np.uint8)
        img[5:15, 6:18] = 210
        write_png(str(img_dir / f'{img_id}.png'), img)
        gt = np.zeros((20, 24), np.uint8)
        gt[5:15, 6:18] = 3 + i
        gt[0, :4] = 255
        write_png(str(gt_dir / f'{img_id}.png'), gt)
        cam = np.zeros((1, 20, 24), np.float32)
        cam[0, 4:14, 5:19] = 0.8
        cam += rng.random(cam.shape).astype(np.float32) * 0.2
        save_cam(cam_path(str(cam_dir), img_id), cam, np.array([2 + i]))
    (tmp_path / 'split.txt').write_text('\n'.join(ids[:2]) + '\n')
    return cam_dir, img_dir, gt_dir, ids


def test_none_refiner_with_miou(tmp_path, capsys):
    cam_dir, img_dir, gt_dir, ids = _data(tmp_path)
    out = tmp_path / 'out'
    res = tool.main([str(cam_dir), str(img_dir), str(out), '--refiner', 'none', '--bg-threshold', '0.5',
                     '--img-suffix', '.png', '--gt-dir', str(gt_dir), '--num-classes', '6', '--no-progress'])
    assert res['counts'] == dict(written=3, skipped=0)  # no --ids: every CAM file
    for img_id in ids:
        cam, keys = load_cam(cam_path(str(cam_dir), img_id))
        np.testing.assert_array_equal(read_png(str(out / f'{img_id}.png')), seed_from_cam(cam, keys, 0.5))
    printed = float(re.search(r'mask mIoU: ([\d.]+)', capsys.readouterr().out).group(1))
    assert printed == pytest.approx(100 * res['miou']['mIoU'], abs=0.006)
    assert 0 < res['miou']['mIoU'] < 1


def test_crf_and_config_refiners(tmp_path):
    cam_dir, img_dir, gt_dir, ids = _data(tmp_path)
    res = tool.main([str(cam_dir), str(img_dir), str(tmp_path / 'crf'), '--ids', str(tmp_path / 'split.txt'),
                     '--refiner', 'crf', '--bg-threshold', '0.5', '--crf-iters', '3', '--img-suffix', '.png',
                     '--no-progress'])
    assert res['counts'] == dict(written=2, skipped=0)
    assert sorted(p.name for p in (tmp_path / 'crf').iterdir()) == ['i0.png', 'i1.png']
    cfg = tmp_path / 'refiner_cfg.py'
    cfg.write_text('from csd_mm.refine import SeedRefiner\n\nrefiner = dict(type=SeedRefiner, bg_threshold=0.9)\n')
    tool.main([str(cam_dir), str(img_dir), str(tmp_path / 'cfg'), '--refiner', str(cfg), '--img-suffix', '.png',
               '--no-progress', '--cfg-options', 'refiner.bg_threshold=2.0'])
    for img_id in ids:  # a background score of 2 beats every CAM value
        assert not read_png(str(tmp_path / 'cfg' / f'{img_id}.png')).any()
    with pytest.raises(SystemExit, match='refiner'):
        tool.main([str(cam_dir), str(img_dir), str(tmp_path / 'x'), '--refiner', str(tmp_path / 'missing.py')])
    # the built-in refiners' flags are refused where they would be ignored
    with pytest.raises(SystemExit, match=r'--bg-threshold --confident: for the built-in refiners only .* '
                                         r'--cfg-options, e\.g\. refiner\.bg_threshold=0\.3'):
        tool.main([str(cam_dir), str(img_dir), str(tmp_path / 'x'), '--refiner', str(cfg), '--bg-threshold', '0.3',
                   '--confident'])
    with pytest.raises(SystemExit, match=r'^--alpha: for the built-in refiners only'):
        tool.main([str(cam_dir), str(img_dir), str(tmp_path / 'x'), '--refiner', 'none', '--alpha', '8'])


def test_cams_of_another_dataset_are_refused(tmp_path):
    cam_dir, img_dir, gt_dir, ids = _data(tmp_path)  # class ids 2, 3, 4
    out = tmp_path / 'out'
    with pytest.raises(SystemExit, match=r'error: CAM file .*i2\.npz has class ids \[4\] but the dataset has 4 '
                                         r'foreground classes \(ids 0\.\.3\): CAMs of another dataset\? '
                                         r'\(--num-classes 5 counts the classes with background; COCO: '
                                         r'--num-classes 81\)'):
        tool.main([str(cam_dir), str(img_dir), str(out), '--refiner', 'none', '--img-suffix', '.png',
                   '--num-classes', '5', '--gt-dir', str(gt_dir), '--no-progress'])
    assert not out.exists()  # nothing written, no mIoU
