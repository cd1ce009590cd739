"""Tests of csd_mm.evaluation.functional.seed_eval (CAM folder evaluation, reports)."""
import json

import mmcv
import numpy as np
import pytest
from PIL import Image

from csd_mm.evaluation.functional import (dump_sweep_json, evaluate_cam_folder, format_sweep, seed_from_cam,
                                          summarize_sweep, sweep_confusion)
from csd_mm.utils import cam_path, load_cam, save_cam


def _folder(tmp_path):
    rng = np.random.default_rng(0)
    ids, conf = ['a', 'b'], 0
    for k, img_id in enumerate(ids):
        cam = rng.choice([0.0, 0.125, 0.25, 0.5], size=(k + 1, 5, 4)).astype(np.float32)  # exact in float16
        keys = np.arange(k + 1) * 3
        gt = rng.integers(0, 10, size=(5, 4)).astype(np.uint8)
        save_cam(cam_path(str(tmp_path / 'cam'), img_id), cam, keys)
        mmcv.imwrite(gt, str(tmp_path / 'gt' / f'{img_id}.png'))
        conf = conf + sweep_confusion(cam, keys, gt, 10, [0.1, 0.25, 0.3])
    return ids, conf


def test_evaluate_cam_folder(tmp_path, capsys):
    ids, conf = _folder(tmp_path)
    res = evaluate_cam_folder(str(tmp_path / 'cam'), str(tmp_path / 'gt'), ids, 10, [0.1, 0.25, 0.3])
    np.testing.assert_array_equal(res['confusion'], conf)
    exp = summarize_sweep(conf, [0.1, 0.25, 0.3])
    assert res['best_miou'] == exp['best_miou'] and res['num_images'] == 2
    assert '2/2' in capsys.readouterr().err  # mmengine's progress bar, on stderr

    report = format_sweep(res, [f'k{i}' for i in range(10)])
    assert f'best mIoU: {exp["best_miou"] * 100:.2f}' in report and 'k9' in report and 't=0.30' in report
    dump_sweep_json(str(tmp_path / 'o' / 'r.json'), res)
    data = json.loads((tmp_path / 'o' / 'r.json').read_text())
    assert data['curve'][1][0] == 0.25 and len(data['per_class_iou']) == 10
    nan_classes = [str(i) for i, v in enumerate(exp['per_class_iou']) if np.isnan(v)]
    assert all(data['per_class_iou'][c] is None for c in nan_classes)


def test_worker_pool_and_rereading_reference_agree(tmp_path):
    """The one-pass sweep, in this process and in 2 worker processes, equals re-reading every file for every
    threshold and scoring seed_from_cam (MCTformer's evaluation.py way), on a few files."""
    rng = np.random.default_rng(1)
    ids, t = [f'im{i}' for i in range(5)], [0.0, 0.05, 0.25, 0.5, 0.55]
    for img_id in ids:
        keys = np.sort(rng.choice(20, size=rng.integers(1, 4), replace=False))
        cam = rng.choice(np.arange(60) / 100, size=(len(keys), 70, 60)).astype(np.float32)
        gt = rng.integers(0, 21, size=(70, 60)).astype(np.uint8)
        gt[rng.random((70, 60)) < 0.1] = 255
        save_cam(cam_path(str(tmp_path / 'cam'), img_id), cam, keys)
        mmcv.imwrite(gt, str(tmp_path / 'gt' / f'{img_id}.png'))
    reference = np.zeros((len(t), 21, 21), np.int64)
    for i, thr in enumerate(t):
        for img_id in ids:
            cam, keys = load_cam(cam_path(str(tmp_path / 'cam'), img_id))
            gt = mmcv.imread(str(tmp_path / 'gt' / f'{img_id}.png'), flag='unchanged')
            valid = gt != 255
            seed = seed_from_cam(cam, keys, thr)
            reference[i] += np.bincount(gt[valid].astype(np.int64) * 21 + seed[valid], minlength=441).reshape(21, 21)
    for workers in (0, 2):
        res = evaluate_cam_folder(str(tmp_path / 'cam'), str(tmp_path / 'gt'), ids, 21, t, progress=False,
                                  num_workers=workers)
        np.testing.assert_array_equal(res['confusion'], reference)
    with pytest.raises(ValueError, match='im3'):  # a worker's error still names the file
        save_cam(cam_path(str(tmp_path / 'cam'), 'im3'), np.zeros((1, 3, 3)), [0])
        evaluate_cam_folder(str(tmp_path / 'cam'), str(tmp_path / 'gt'), ids, 21, t, progress=False,
                            num_workers=2)


def test_evaluate_cam_folder_errors(tmp_path):
    ids, _ = _folder(tmp_path)
    with pytest.raises(FileNotFoundError, match=r'1 of 3 images have no CAM file.*c\.npz'):
        evaluate_cam_folder(str(tmp_path / 'cam'), str(tmp_path / 'gt'), ids + ['c'], 10, progress=False)
    mmcv.imwrite(np.zeros((3, 3), np.uint8), str(tmp_path / 'gt' / 'b.png'))
    with pytest.raises(ValueError, match=r'b\.png has size \(3, 3\).*b\.npz has size \(5, 4\)'):
        evaluate_cam_folder(str(tmp_path / 'cam'), str(tmp_path / 'gt'), ids, 10, progress=False)
    (tmp_path / 'gt' / 'a.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'a\.png does not exist'):
        evaluate_cam_folder(str(tmp_path / 'cam'), str(tmp_path / 'gt'), ids, 10, progress=False)
    mmcv.imwrite(np.full((5, 4), 12, np.uint8), str(tmp_path / 'gt' / 'a.png'))
    with pytest.raises(ValueError, match=r'a\.npz / .*a\.png: gt has values outside'):
        evaluate_cam_folder(str(tmp_path / 'cam'), str(tmp_path / 'gt'), ids, 10, progress=False)
