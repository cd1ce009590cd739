"""Tests of csd_mm/datasets/transforms/pack_csd_inputs.py (PackCSDInputs: the four CSD views)."""
import numpy as np
import pytest
import torch

import csd_mm  # noqa: F401
from csd_mm.datasets.transforms import PackCSDInputs

H, W = 5, 7


def _results():
    rng = np.random.default_rng(0)
    views = {k: rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
             for k in ('img', 'src_img', 'pasted_fg_img', 'pasted_bg_img')}
    fg = np.zeros((H, W), np.uint8)
    fg[1:3, 2:5] = 1
    bg = np.zeros((H, W), np.uint8)
    bg[4, :] = 1
    return dict(views, src_fg_mask=fg, src_bg_mask=bg, gt_label=np.array([1, 0, 1], np.float32),
                src_label=np.array([0, 1, 0], np.float32), img_id='t1', src_img_id='s1', img_path='x/t1.jpg',
                ori_shape=(H, W), img_shape=(H, W))


def test_shapes_order_and_sample_fields():
    results = _results()
    out = PackCSDInputs()(dict(results))
    x = out['inputs']
    assert x.dtype == torch.uint8 and x.shape == (4, 3, H, W)
    for v, key in enumerate(('img', 'src_img', 'pasted_fg_img', 'pasted_bg_img')):
        # view v is the (H, W, 3) image transposed to (3, H, W), channels kept (BGR)
        np.testing.assert_array_equal(x[v].numpy(), results[key].transpose(2, 0, 1))
    s = out['data_samples']
    assert s.gt_label.tolist() == [1, 0, 1] and s.src_label.tolist() == [0, 1, 0]
    assert s.src_label.dtype == torch.float32
    assert s.src_fg_mask.dtype == torch.bool and s.src_fg_mask.shape == (H, W)
    np.testing.assert_array_equal(s.src_fg_mask.numpy(), results['src_fg_mask'] == 1)
    np.testing.assert_array_equal(s.src_bg_mask.numpy(), results['src_bg_mask'] == 1)
    assert s.metainfo['img_id'] == 't1' and s.metainfo['src_img_id'] == 's1'
    assert tuple(s.metainfo['img_shape']) == (H, W)


@pytest.mark.parametrize('key', ['src_img', 'pasted_fg_img', 'pasted_bg_img', 'src_fg_mask', 'src_bg_mask',
                                 'src_label'])
def test_missing_key(key):
    results = _results()
    del results[key]
    with pytest.raises(KeyError, match=f"{key}.*x/t1.jpg"):
        PackCSDInputs()(results)


def test_size_mismatch():
    results = _results()
    results['pasted_bg_img'] = np.zeros((H, W + 1, 3), np.uint8)
    with pytest.raises(ValueError, match='differ in size.*pasted_bg_img'):
        PackCSDInputs()(results)
    results = _results()
    results['src_fg_mask'] = np.zeros((H - 1, W), np.uint8)
    with pytest.raises(ValueError, match='x/t1.jpg'):
        PackCSDInputs()(results)


def test_unpaired_item_is_packed_as_one_view():
    results = _results()
    for key in ('src_img', 'pasted_fg_img', 'pasted_bg_img', 'src_fg_mask', 'src_bg_mask', 'src_label',
                'src_img_id'):
        del results[key]
    results['csd_paired'] = False
    out = PackCSDInputs()(results)
    assert out['inputs'].shape == (1, 3, H, W)
    np.testing.assert_array_equal(out['inputs'][0].numpy(), results['img'].transpose(2, 0, 1))
    s = out['data_samples']
    assert s.gt_label.tolist() == [1, 0, 1]
    assert 'src_fg_mask' not in s and 'src_label' not in s and 'src_img_id' not in s.metainfo
