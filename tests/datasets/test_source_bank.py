"""Tests of csd_mm/datasets/source_bank.py (CSD stage 0: the prior masks of the single-label images)."""
import json
import os
import os.path as osp

import numpy as np
import pytest

from csd_mm.datasets.source_bank import (BG_VALUE, FG_VALUE, UNSURE_VALUE, build_source_bank,
                                         check_source_bank_labels, check_source_bank_settings, encode_masks,
                                         load_source_bank, masks_from_cam, masks_from_pseudo_mask,
                                         recorded_cam_fingerprint, source_bank_complete, source_bank_settings)
from csd_mm.utils.cam_io import CAM_RECORD_FILE, cam_path, record_new_cam_folder, save_cam
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
    assert index['settings'] == dict(prior='cam', tau_fg=0.30, tau_bg=0.05) and index['num_classes'] == 3
    assert not osp.exists(osp.join(out, 'settings.partial.json'))  # removed once the bank is complete
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
    assert index['settings'] == dict(prior='masks', mask_dir=str(pm_dir))  # tau_fg / tau_bg do not apply
    assert [e['img_id'] for e in index['entries']] == ['a', 'c']
    assert recorded_cam_fingerprint(out) is None  # a pseudo-mask prior depends on no weights
    np.testing.assert_array_equal(read_png(osp.join(out, 'masks', 'a.png')), [[1, 0], [255, 255]])
    np.testing.assert_array_equal(read_png(osp.join(out, 'masks', 'c.png')), [[1, 1], [0, 255]])


def test_rerun_reuses_the_index_without_rewriting(tmp_path):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    _write_cams(cam_dir)
    first = build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, tau_fg=0.5, progress=False)
    files = [osp.join(out, 'index.json'), osp.join(out, 'masks', 'a.png')]
    mtimes = [os.stat(f).st_mtime_ns for f in files]
    # the CAMs are gone and the same settings are asked for: the finished bank is returned as it is
    for f in os.listdir(cam_dir):
        os.remove(osp.join(cam_dir, f))
    again = build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, tau_fg=0.5, progress=False)
    assert again == json.loads(json.dumps(first))
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes


def test_source_bank_settings():
    assert source_bank_settings(cam_dir='c', tau_fg=0.4, tau_bg=0.1) == dict(prior='cam', tau_fg=0.4, tau_bg=0.1)
    assert source_bank_settings(cam_dir='c', tau_fg=1, tau_bg=0) == dict(prior='cam', tau_fg=1.0, tau_bg=0.0)
    assert source_bank_settings(pseudo_mask_dir='/x/pm/', tau_fg=0.9) == dict(prior='masks', mask_dir='/x/pm')
    rel = source_bank_settings(pseudo_mask_dir='pm')['mask_dir']
    assert rel == osp.join(os.getcwd(), 'pm')  # stored absolute
    with pytest.raises(ValueError, match='exactly one'):
        source_bank_settings()
    with pytest.raises(ValueError, match='tau_bg'):
        source_bank_settings(cam_dir='c', tau_fg=0.1, tau_bg=0.2)


def test_other_settings_are_refused_naming_the_bank_and_both_settings(tmp_path):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    _write_cams(cam_dir)
    build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    index_before = (tmp_path / 'bank' / 'index.json').read_text()
    with pytest.raises(ValueError, match=r'(?s)bank.*other settings: built with CAM prior, tau_fg=0\.3, '
                       r'tau_bg=0\.05, asked for CAM prior, tau_fg=0\.9, tau_bg=0\.05\. Delete .*bank.*out_dir'):
        build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, tau_fg=0.9, progress=False)
    with pytest.raises(ValueError, match=r'tau_bg=0\.01'):
        build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, tau_bg=0.01, progress=False)
    pm_dir = tmp_path / 'pm'
    with pytest.raises(ValueError, match=f'built with CAM prior.*asked for pseudo-mask prior from {pm_dir}'):
        build_source_bank(out, IDS, LABELS, pseudo_mask_dir=str(pm_dir), progress=False)
    assert (tmp_path / 'bank' / 'index.json').read_text() == index_before  # nothing rewritten
    # a bank from pseudo masks: another mask folder is other settings, the thresholds are not
    pm_dir.mkdir()
    write_png(str(pm_dir / 'a.png'), np.full((2, 2), 3, np.uint8))
    write_png(str(pm_dir / 'c.png'), np.ones((2, 2), np.uint8))
    out_pm = str(tmp_path / 'bank_pm')
    first = build_source_bank(out_pm, IDS, LABELS, pseudo_mask_dir=str(pm_dir), progress=False)
    assert build_source_bank(out_pm, IDS, LABELS, pseudo_mask_dir=str(pm_dir) + '/', tau_fg=0.9,
                             progress=False) == first
    with pytest.raises(ValueError, match=f'built with pseudo-mask prior from {pm_dir}, asked for pseudo-mask '
                       f'prior from {tmp_path / "other"}'):
        build_source_bank(out_pm, IDS, LABELS, pseudo_mask_dir=str(tmp_path / 'other'), progress=False)
    check_source_bank_settings(str(tmp_path / 'no_bank_yet'), source_bank_settings(cam_dir=cam_dir))  # no-op


def test_a_bank_without_settings_is_refused_for_building_but_loads_for_training(tmp_path):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    _write_cams(cam_dir)
    build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    # the index as banks wrote it before they recorded their settings
    old = dict(entries=load_source_bank(out)['entries'], prior='cam', tau_fg=0.30, tau_bg=0.05, num_classes=3)
    (tmp_path / 'bank' / 'index.json').write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r'(?s)source bank .*bank was written before banks recorded their '
                       r'settings.*no "settings".*asked CAM prior, tau_fg=0\.3, tau_bg=0\.05\. Delete'):
        build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    assert load_source_bank(out) == old  # training (CSDDataset) reads it as before


def test_crashed_run_resumes(tmp_path):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    _write_cams(cam_dir)
    os.rename(cam_path(cam_dir, 'c'), str(tmp_path / 'c.npz'))
    with pytest.raises(FileNotFoundError, match='c.npz'):  # the run crashes after the mask of a
        build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    assert not source_bank_complete(out)
    assert os.listdir(osp.join(out, 'masks')) == ['a.png']
    assert json.loads((tmp_path / 'bank' / 'settings.partial.json').read_text())['prior'] == 'cam'
    # the kept mask of a (all foreground: what its CAM would not give) is used when the run resumes
    write_png(osp.join(out, 'masks', 'a.png'), np.full((2, 2), 1, np.uint8))
    os.rename(str(tmp_path / 'c.npz'), cam_path(cam_dir, 'c'))
    os.remove(cam_path(cam_dir, 'a'))  # so a cannot be recomputed: the kept file must be used
    # resuming with other settings would mix them: refused
    with pytest.raises(ValueError, match=r'unfinished source bank .*bank was started with CAM prior, '
                       r'tau_fg=0\.3.*asked for CAM prior, tau_fg=0\.6.*mix'):
        build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, tau_fg=0.6, progress=False)
    index = build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    assert [e['img_id'] for e in index['entries']] == ['a', 'c']
    np.testing.assert_array_equal(read_png(osp.join(out, 'masks', 'a.png')), np.full((2, 2), 1))
    np.testing.assert_array_equal(read_png(osp.join(out, 'masks', 'c.png')), [[1, 0], [255, 1]])
    assert source_bank_complete(out) and not osp.exists(osp.join(out, 'settings.partial.json'))


def test_crashed_run_of_an_older_version_is_refused(tmp_path):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    _write_cams(cam_dir)
    # masks left by a crashed run that did not record its settings
    os.makedirs(osp.join(out, 'masks'))
    write_png(osp.join(out, 'masks', 'a.png'), np.full((2, 2), 7, np.uint8))
    with pytest.raises(ValueError, match=r'unfinished source bank .*bank holds masks but no '
                       r'settings\.partial\.json.*Delete'):
        build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)


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


def test_bank_that_disagrees_with_the_labels_is_refused(tmp_path):
    bank = str(tmp_path / 'bank')
    index = dict(entries=[dict(img_id='a', mask='masks/a.png', **{'class': 2}),
                          dict(img_id='c', mask='masks/c.png', **{'class': 0})], num_classes=3)
    assert check_source_bank_labels(bank, index, IDS, LABELS) == index['entries']  # the bank of these labels
    with pytest.raises(ValueError, match=r'source bank .*bank was built for 3 foreground classes but cls\.npy have '
                                         r'5\. Rebuild'):
        check_source_bank_labels(bank, index, IDS, np.zeros((4, 5)), 'cls.npy')
    with pytest.raises(ValueError, match=r"source bank .*bank: 2 of 2 entries name images that are not in the "
                                         r"training dataset \(e\.g\. 'a'\)"):
        check_source_bank_labels(bank, index, ['x', 'y'], LABELS[:2])
    other = LABELS.copy()
    other[0] = [0, 1, 0]  # a is single-label of class 1 under these labels
    with pytest.raises(ValueError, match=r"1 entries are not single-label images of the class they are stored "
                                         r"under, by new\.npy \(e\.g\. 'a' is stored under class 2 but labelled \[1\]"):
        check_source_bank_labels(bank, index, IDS, other, 'new.npy')
    other[0] = [0, 1, 1]  # multi-label now
    with pytest.raises(ValueError, match=r"'a' is stored under class 2 but labelled \[1, 2\]"):
        check_source_bank_labels(bank, index, IDS, other)


def test_bank_entries_outside_a_training_subset_are_left_out_with_a_warning(tmp_path):
    from mmengine.logging import MMLogger
    bank = str(tmp_path / 'bank')
    index = dict(entries=[dict(img_id='a', mask='masks/a.png', **{'class': 2}),
                          dict(img_id='c', mask='masks/c.png', **{'class': 0})], num_classes=3)
    logger = MMLogger.get_instance('bank_subset_test', log_file=str(tmp_path / 'log.txt'))
    kept = check_source_bank_labels(bank, index, IDS[:1], LABELS[:1])  # a training on a subset holding 'a' only
    assert [e['img_id'] for e in kept] == ['a']
    for handler in logger.handlers:
        handler.flush()
    assert "1 of 2 entries name images that are not in the training dataset (e.g. 'c'); they are left out" in \
        (tmp_path / 'log.txt').read_text()


def test_empty_foreground_masks_are_named_in_a_warning(tmp_path, logged_warnings):
    mask_dir, out = tmp_path / 'pm', str(tmp_path / 'bank')
    write_png(str(mask_dir / 'a.png'), np.array([[3, 0], [0, 0]], np.uint8))  # class 2 -> value 3: has fg
    write_png(str(mask_dir / 'c.png'), np.array([[0, 0], [255, 2]], np.uint8))  # class 0 (value 1) is absent
    index = build_source_bank(out, IDS, LABELS, pseudo_mask_dir=str(mask_dir), progress=False)
    assert [e['img_id'] for e in index['entries']] == ['a', 'c']
    assert any("1 of 2 single-label images have an empty foreground mask, so pasting them pastes nothing (their "
               "consistency terms are 0), e.g. 'c'" in m for m in logged_warnings)



def test_malicious_source_bank_index_runs_no_code(tmp_path, touch_marker):
    """The index is JSON (never unpickled): a pickle in its place is a malformed index, and runs nothing."""
    import pickle
    marker = tmp_path / 'marker'
    bank = tmp_path / 'bank'
    bank.mkdir()
    (bank / 'index.json').write_bytes(pickle.dumps(dict(entries=[touch_marker(marker)])))
    with pytest.raises(ValueError, match=r'index\.json: malformed source bank index'):
        load_source_bank(str(bank))
    assert not marker.exists()


def test_a_bank_of_the_cams_of_other_weights_is_refused(tmp_path):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    record_new_cam_folder(cam_dir, 'aaaa000000000001', iteration=2)
    _write_cams(cam_dir)
    assert source_bank_settings(cam_dir=cam_dir) == dict(prior='cam', tau_fg=0.3, tau_bg=0.05,
                                                         cam_fingerprint='aaaa000000000001')
    assert recorded_cam_fingerprint(out) is None  # no bank yet
    first = build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    assert first['settings']['cam_fingerprint'] == 'aaaa000000000001' == recorded_cam_fingerprint(out)
    assert build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False) == first  # same CAMs: reused
    # the CAM folder written again by other weights
    record = json.loads((tmp_path / 'cams' / CAM_RECORD_FILE).read_text())
    (tmp_path / 'cams' / CAM_RECORD_FILE).write_text(json.dumps(dict(record, fingerprint='bbbb000000000002')))
    message = (f'source bank {out} exists with other settings: built with CAM prior, tau_fg=0.3, tau_bg=0.05, '
               'CAMs of weights aaaa000000000001, asked for CAM prior, tau_fg=0.3, tau_bg=0.05, CAMs of weights '
               f'bbbb000000000002. Delete {out}')
    for check in (lambda: build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False),
                  lambda: check_source_bank_settings(out, source_bank_settings(cam_dir=cam_dir))):
        with pytest.raises(ValueError) as refused:
            check()
        assert str(refused.value).startswith(message)
    # a crashed build resumed from the CAMs of other weights would mix them: refused too
    os.remove(osp.join(out, 'index.json'))
    (tmp_path / 'bank' / 'settings.partial.json').write_text(json.dumps(first['settings']))
    assert recorded_cam_fingerprint(out) == 'aaaa000000000001'  # an unfinished bank's too
    with pytest.raises(ValueError, match=r'unfinished source bank .* started with CAM prior, tau_fg=0\.3, '
                       r'tau_bg=0\.05, CAMs of weights aaaa000000000001, asked for .*bbbb000000000002; resuming'):
        build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)


def test_a_bank_without_cam_fingerprint_is_reused_with_a_warning(tmp_path, logged_warnings):
    cam_dir, out = str(tmp_path / 'cams'), str(tmp_path / 'bank')
    _write_cams(cam_dir)  # a CAM folder without record (older version): the bank records no fingerprint
    first = build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    assert first['settings'] == dict(prior='cam', tau_fg=0.3, tau_bg=0.05)
    assert recorded_cam_fingerprint(out) is None
    (tmp_path / 'cams' / CAM_RECORD_FILE).write_text(json.dumps(dict(fingerprint='cccc000000000003')))
    logged_warnings.clear()
    again = build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, progress=False)
    assert again == first
    assert [m for m in logged_warnings if m.startswith(
        f'source bank {out} records no CAM fingerprint (built before banks recorded it), so nothing tells whether '
        'its masks come from the CAMs of weights cccc000000000003; it is used as it is.')]
    with pytest.raises(ValueError, match=r'tau_fg=0\.3, tau_bg=0\.05, asked for CAM prior, tau_fg=0\.6'):
        build_source_bank(out, IDS, LABELS, cam_dir=cam_dir, tau_fg=0.6, progress=False)  # the rest still counts
    # a bank that records one, asked of a CAM folder without record (deleted, to be written again): no verdict
    os.remove(str(tmp_path / 'cams' / CAM_RECORD_FILE))
    index = json.loads((tmp_path / 'bank' / 'index.json').read_text())
    index['settings']['cam_fingerprint'] = 'cccc000000000003'
    (tmp_path / 'bank' / 'index.json').write_text(json.dumps(index))
    check_source_bank_settings(out, source_bank_settings(cam_dir=cam_dir))
