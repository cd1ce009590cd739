"""Tests of csd_mm/datasets/source_bank.py (CSD stage 0: the prior masks of the single-label images)."""
import json
import os
import os.path as osp

import numpy as np
import pytest

from csd_mm.datasets.source_bank import (BG_VALUE, FG_VALUE, UNSURE_VALUE, build_source_bank, encode_masks,
                                         load_source_bank, masks_from_cam, masks_from_pseudo_mask,
                                         source_bank_complete)
from csd_mm.utils.cam_io import cam_path, save_cam
from csd_mm.utils.fileio import read_png, write_png


def test_masks_from_cam_thresholds_are_inclusive_for_fg_and_strict_for_bg():
    cam = np.array([[0.0, 0.04, 0.05, 0.06],
                    [0.29, 0.30, 0.31, 1.0]], np.float32)
    fg, bg = masks_from_cam(cam, tau_fg=0.30, tau_bg=0.05)
    assert fg.dtype == bool and bg.dtype == bool
    np.testing.assert_array_equal(fg, [[0, 0, 0, 0], [0, 1, 1, 1]])
    np.testing.assert_array_equal(bg, [[1, 1, 0, 0], [0, 0, 0, 0]])
    assert not np.logical_and(fg, bg).any()
    # other thresholds
    fg, bg = masks_from_cam(cam, tau_fg=0.06, tau_bg=0.06)
    np.testing.assert_array_equal(fg, [[0, 0, 0, 1], [1, 1, 1, 1]])
    np.testing.assert_array_equal(bg, [[1, 1, 1, 0], [0, 0, 0, 0]])


def test_masks_from_cam_errors():
    with pytest.raises(ValueError, match='NaN'):
        masks_from_cam(np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError, match='NaN or inf'):
        masks_from_cam(np.array([[0.1, np.inf]]))
    with pytest.raises(ValueError, match='tau_bg'):
        masks_from_cam(np.zeros((2, 2)), tau_fg=0.1, tau_bg=0.2)


def test_masks_from_pseudo_mask():
    mask = np.array([[0, 1, 2], [255, 2, 0]], np.uint8)
    fg, bg = masks_from_pseudo_mask(mask, class_index=1)  # class 1 is mask value 2
    np.testing.assert_array_equal(fg, [[0, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(bg, [[1, 0, 0], [0, 0, 1]])  # 255 and other classes: neither
    fg, _ = masks_from_pseudo_mask(mask, class_index=0)
    np.testing.assert_array_equal(fg, [[0, 1, 0], [0, 0, 0]])


def test_encode_masks():
    fg = np.array([[1, 0, 0]], bool)
    bg = np.array([[0, 1, 0]], bool)
    out = encode_masks(fg, bg)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[FG_VALUE, BG_VALUE, UNSURE_VALUE]])
    assert (FG_VALUE, BG_VALUE, UNSURE_VALUE) == (1, 0, 255)
    with pytest.raises(ValueError, match='overlap'):
        encode_masks(fg, fg)


# ids, labels (C = 3): a and c are single-label (class 2, class 0), b is multi-label, d has no class
IDS = ['a', 'b', 'c', 'd']
LABELS = np.array([[0, 0, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]], np.float32)
# (values away from the thresholds: CAM files store float16)
CAM_A = np.array([[0.0, 0.2], [0.5, 1.0]], np.float32)  # -> [[bg, unsure], [fg, fg]]
CAM_C = np.array([[1.0, 0.02], [0.1, 0.5]], np.float32)  # -> [[fg, bg], [unsure, fg]]


def _write_cams(cam_dir):
    # the CAM of a also holds another class (index order matters: keys [0, 2])
    save_cam(cam_path(cam_dir, 'a'), np.stack([np.ones((2, 2), np.float32), CAM_A]), [0, 2])
    save_cam(cam_path(cam_dir, 'b'), np.stack([CAM_A, CAM_C]), [0, 1])
    save_cam(cam_path(cam_dir, 'c'), CAM_C[None], [0])


def test_build_from_cams(tmp_path):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    _write_cams(cam_dir)
    assert not source_bank_complete(out)
    index = build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    assert source_bank_complete(out)
    assert index['entries'] == [dict(img_id='a', mask='masks/a.png', **{'class': 2}),
                                dict(img_id='c', mask='masks/c.png', **{'class': 0})]
    assert index['prior'] == 'cam' and index['num_classes'] == 3
    assert (index['tau_fg'], index['tau_bg']) == (0.30, 0.05)
    np.testing.assert_array_equal(read_png(osp.join(out, 'masks', 'a.png')), [[0, 255], [1, 1]])
    np.testing.assert_array_equal(read_png(osp.join(out, 'masks', 'c.png')), [[1, 0], [255, 1]])
    assert sorted(os.listdir(osp.join(out, 'masks'))) == ['a.png', 'c.png']
    assert load_source_bank(out) == json.loads(json.dumps(index))


def test_build_from_pseudo_masks(tmp_path):
    pm_dir, out = tmp_path / 'pm', str(tmp_path / 'bank')
    pm_dir.mkdir()
    write_png(str(pm_dir / 'a.png'), np.array([[3, 0], [255, 1]], np.uint8))  # class 2 -> value 3
    write_png(str(pm_dir / 'c.png'), np.array([[1, 1], [0, 2]], np.uint8))
    index = build_source_bank(out, IDS, LABELS, pseudo_mask_dir=str(pm_dir), progress=False)
    assert index['prior'] == 'pseudo_mask'
    assert [e['img_id'] for e in index['entries']] == ['a', 'c']
    np.testing.assert_array_equal(read_png(osp.join(out, 'masks', 'a.png')), [[1, 0], [255, 255]])
    np.testing.assert_array_equal(read_png(osp.join(out, 'masks', 'c.png')), [[1, 1], [0, 255]])


def test_rerun_reuses_the_index_without_rewriting(tmp_path):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    _write_cams(cam_dir)
    first = build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    files = [osp.join(out, 'index.json'), osp.join(out, 'masks', 'a.png')]
    mtimes = [os.stat(f).st_mtime_ns for f in files]
    # the CAMs are gone and other thresholds are asked for: the finished bank is returned as it is
    for f in os.listdir(cam_dir):
        os.remove(osp.join(cam_dir, f))
    again = build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, tau_fg=0.9, progress=False)
    assert again == json.loads(json.dumps(first))
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes


def test_crashed_run_resumes(tmp_path):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    _write_cams(cam_dir)
    # a crashed run left the mask of a (with a marker value nobody would compute) and no index
    os.makedirs(osp.join(out, 'masks'))
    write_png(osp.join(out, 'masks', 'a.png'), np.full((2, 2), 7, np.uint8))
    os.remove(cam_path(cam_dir, 'a'))  # so a cannot be recomputed: the kept file must be used
    index = build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    assert [e['img_id'] for e in index['entries']] == ['a', 'c']
    np.testing.assert_array_equal(read_png(osp.join(out, 'masks', 'a.png')), np.full((2, 2), 7))
    np.testing.assert_array_equal(read_png(osp.join(out, 'masks', 'c.png')), [[1, 0], [255, 1]])
    assert source_bank_complete(out)


def test_errors(tmp_path):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    save_cam(cam_path(cam_dir, 'a'), CAM_A[None], [1])  # a is labelled class 2
    with pytest.raises(ValueError, match=r'a\.npz.*label says 2'):
        build_source_bank(out, ['a'], LABELS[:1], cam_dir=cam_dir, progress=False)
    assert not source_bank_complete(out)
    with pytest.raises(FileNotFoundError, match='c.npz'):
        build_source_bank(out, ['c'], LABELS[2:3], cam_dir=cam_dir, progress=False)
    with pytest.raises(ValueError, match='exactly one'):
        build_source_bank(out, IDS, LABELS, progress=False)
    with pytest.raises(ValueError, match='exactly one'):
        build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, pseudo_mask_dir=cam_dir, progress=False)
    with pytest.raises(ValueError, match='4 ids but 3'):
        build_source_bank(out, IDS, LABELS[:3], cam_dir=cam_dir, progress=False)
    with pytest.raises(FileNotFoundError, match=r'index\.json.*no source bank index'):
        load_source_bank(str(tmp_path / 'nowhere'))
    bad = tmp_path / 'bad'
    bad.mkdir()
    (bad / 'index.json').write_text('{"entries": [{"img_id": "a"}]}')
    with pytest.raises(ValueError, match='lacks'):
        load_source_bank(str(bad))
    (bad / 'index.json').write_text('not json')
    with pytest.raises(ValueError, match='malformed'):
        load_source_bank(str(bad))
