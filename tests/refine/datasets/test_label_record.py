"""Tests of csd_mm/refine/datasets/label_record.py: the settings / CAM record of a confident-label folder."""
import json
import os

import numpy as np
import pytest

from csd_mm.refine.datasets.label_record import (RECORD_FILE, cam_stamps, changed_cam_ids, claim_label_dir,
                                                 confident_label_settings, effective_crf_cfg,
                                                 settings_differences)
from csd_mm.utils.cam_io import cam_path, save_cam
from csd_mm.utils.fileio import write_png

# PSA's crf_inference (and MCTformer's copy of it)
DENSE_CRF_DEFAULTS = dict(n_iters=10, pos_xy_std=3, pos_w=3, bi_xy_std=80, bi_rgb_std=13, bi_w=10)


def _psa(cam_dir, low_alpha, high_alpha, crf_cfg=None):
    return confident_label_settings(cam_dir, 'psa', dict(low_alpha=low_alpha, high_alpha=high_alpha), crf_cfg)


def test_effective_crf_cfg_fills_dense_crf_defaults():
    assert effective_crf_cfg() == DENSE_CRF_DEFAULTS
    assert effective_crf_cfg(dict(bi_xy_std=8)) == dict(DENSE_CRF_DEFAULTS, bi_xy_std=8)
    assert effective_crf_cfg(dict(bi_xy_std=80)) == effective_crf_cfg({})  # the default spelt out: same
    with pytest.raises(ValueError, match=r"\['bi_xy_sd'\] that dense_crf \(the CRF of the 'psa' confident labels\) "
                       'does not take'):
        effective_crf_cfg(dict(bi_xy_sd=8))


def test_effective_crf_cfg_of_irns_label_crf():
    irn_defaults = dict(gt_prob=0.7, n_iters=10, pos_xy_std=3, pos_w=3, bi_xy_std=50, bi_rgb_std=5, bi_w=10)
    assert effective_crf_cfg(recipe='irn') == irn_defaults
    assert effective_crf_cfg(dict(bi_xy_std=8), 'irn') == dict(irn_defaults, bi_xy_std=8)
    with pytest.raises(ValueError, match=r"\['gt_prob'\] that dense_crf "):
        effective_crf_cfg(dict(gt_prob=0.7), 'psa')  # PSA's CRF takes scores, not labels
    with pytest.raises(ValueError, match="recipe must be one of \\['irn', 'psa'\\], got 'crf'"):
        effective_crf_cfg(recipe='crf')


def test_settings_and_differences(tmp_path):
    settings = _psa(str(tmp_path / 'a' / '..' / 'cams'), 4, 32, dict(n_iters=3))
    assert settings == dict(cam_dir=str(tmp_path / 'cams'), recipe='psa', low_alpha=4.0, high_alpha=32.0,
                            crf_cfg=dict(DENSE_CRF_DEFAULTS, n_iters=3))
    other = _psa(str(tmp_path / 'cams'), 4, 12, dict(n_iters=3, bi_xy_std=8))
    assert settings_differences(settings, settings) == []
    assert settings_differences(settings, other) == [
        'crf_cfg.bi_xy_std: 80 (labels) vs 8 (asked)', 'high_alpha: 32.0 (labels) vs 12.0 (asked)']


def test_cam_stamps_and_changed_ids(tmp_path):
    for img_id, k in (('a', 1), ('b', 2)):
        save_cam(cam_path(str(tmp_path), img_id), np.zeros((k, 4, 4), np.float32), np.arange(k))
    os.utime(cam_path(str(tmp_path), 'a'), ns=(10**18, 10**18))
    stamps = cam_stamps(str(tmp_path), ['a', 'b'])
    assert stamps['a'] == [os.path.getsize(cam_path(str(tmp_path), 'a')), 10**18]
    assert stamps['b'][0] == os.path.getsize(cam_path(str(tmp_path), 'b'))
    assert changed_cam_ids({'a': [5, 1], 'b': [6, 2], 'c': [7, 3]}, {'a': [5, 1], 'b': [6, 9], 'd': [1, 1]}) == ['b']


def _record(label_dir):
    with open(label_dir / RECORD_FILE) as f:
        return json.load(f)


def test_claim_reuses_same_settings_and_refuses_changed_crf_cfg(tmp_path):
    label_dir = tmp_path / 'conf'
    settings = _psa(str(tmp_path / 'cams'), 4, 32, dict(bi_xy_std=8))
    claim_label_dir(str(label_dir), settings, {'a': [100, 1]})
    assert _record(label_dir) == dict(settings=settings, cams={'a': [100, 1]})
    write_png(str(label_dir / 'a.png'), np.zeros((4, 4), np.uint8))  # a cached label
    claim_label_dir(str(label_dir), settings, {'a': [100, 1], 'b': [200, 2]})  # same settings: reused
    assert _record(label_dir)['cams'] == {'a': [100, 1], 'b': [200, 2]}  # the new id recorded
    other = _psa(str(tmp_path / 'cams'), 4, 32, dict(bi_xy_std=80))
    with pytest.raises(ValueError, match=rf'labels in {label_dir} were made with other settings: '
                       r'crf_cfg\.bi_xy_std: 8 \(labels\) vs 80 \(asked\)\. Delete .*conf to recompute'):
        claim_label_dir(str(label_dir), other, {'a': [100, 1]})
    assert _record(label_dir)['settings'] == settings  # the refusal leaves the record alone


def test_claim_refuses_changed_cams_of_cached_labels_only(tmp_path):
    label_dir = tmp_path / 'conf'
    settings = _psa(str(tmp_path / 'cams'), 4, 32)
    claim_label_dir(str(label_dir), settings, {'a': [100, 1], 'b': [200, 2]})
    write_png(str(label_dir / 'a.png'), np.zeros((4, 4), np.uint8))
    claim_label_dir(str(label_dir), settings, {'a': [100, 1], 'b': [200, 5]})  # b has no label yet: updated
    assert _record(label_dir)['cams']['b'] == [200, 5]
    with pytest.raises(ValueError, match=r"1 CAM files in .*cams changed .* e\.g\. \['a\.npz'\]"):
        claim_label_dir(str(label_dir), settings, {'a': [100, 7], 'b': [200, 5]})


def test_claim_without_labels_restarts_and_old_folders_warn(tmp_path, logged_warnings):
    label_dir = tmp_path / 'conf'
    first = _psa(str(tmp_path / 'cams'), 4, 32)
    claim_label_dir(str(label_dir), first, {'a': [1, 1]})
    second = _psa(str(tmp_path / 'cams'), 1, 12)
    claim_label_dir(str(label_dir), second, {'a': [1, 2]})  # no label made yet: nothing stale, record replaced
    assert _record(label_dir) == dict(settings=second, cams={'a': [1, 2]})
    (label_dir / RECORD_FILE).write_text('{not json')
    write_png(str(label_dir / 'a.png'), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match='not a readable label record'):
        claim_label_dir(str(label_dir), second, {'a': [1, 2]})
    os.remove(label_dir / RECORD_FILE)  # labels from before the record existed: used, with a warning
    logged_warnings.clear()
    claim_label_dir(str(label_dir), second, {'a': [1, 2]})
    assert len(logged_warnings) == 1 and f'{label_dir} holds confident labels but no {RECORD_FILE}' in \
        logged_warnings[0]
    assert not (label_dir / RECORD_FILE).exists()  # not blessed: the next run warns again


def test_settings_record_the_recipe_and_labels_of_the_other_recipe_are_refused(tmp_path):
    cams = str(tmp_path / 'cams')
    irn = confident_label_settings(cams, 'irn', dict(conf_fg=0.3, conf_bg=0.05), dict(bi_xy_std=8))
    assert irn == dict(cam_dir=cams, recipe='irn', conf_fg=0.3, conf_bg=0.05,
                       crf_cfg=dict(gt_prob=0.7, n_iters=10, pos_xy_std=3, pos_w=3, bi_xy_std=8, bi_rgb_std=5,
                                    bi_w=10))
    with pytest.raises(ValueError, match=r"'irn' confident labels take the numbers \['conf_fg', 'conf_bg'\], got "
                       r"\['high_alpha', 'low_alpha'\]"):
        confident_label_settings(cams, 'irn', dict(low_alpha=4, high_alpha=32))
    label_dir = tmp_path / 'conf'
    claim_label_dir(str(label_dir), _psa(cams, 4, 32), {'a': [1, 1]})
    write_png(str(label_dir / 'a.png'), np.zeros((4, 4), np.uint8))  # a PSA label cached
    with pytest.raises(ValueError, match=r"other settings: .*recipe: 'psa' \(labels\) vs 'irn' \(asked\)"):
        claim_label_dir(str(label_dir), irn, {'a': [1, 1]})


def test_records_from_before_the_recipe_switch_are_psas(tmp_path):
    cams = str(tmp_path / 'cams')
    label_dir = tmp_path / 'conf'
    label_dir.mkdir()
    legacy = {k: v for k, v in _psa(cams, 4, 32).items() if k != 'recipe'}  # what older versions recorded
    (label_dir / RECORD_FILE).write_text(json.dumps(dict(settings=legacy, cams={'a': [1, 1]})))
    write_png(str(label_dir / 'a.png'), np.zeros((4, 4), np.uint8))
    claim_label_dir(str(label_dir), _psa(cams, 4, 32), {'a': [1, 1], 'b': [2, 2]})  # the same PSA labels: reused
    assert _record(label_dir)['settings'] == _psa(cams, 4, 32)
    (label_dir / RECORD_FILE).write_text(json.dumps(dict(settings=legacy, cams={'a': [1, 1]})))
    with pytest.raises(ValueError, match=r"recipe: 'psa' \(labels\) vs 'irn' \(asked\)"):
        claim_label_dir(str(label_dir), confident_label_settings(cams, 'irn', dict(conf_fg=0.3, conf_bg=0.05)),
                        {'a': [1, 1]})
