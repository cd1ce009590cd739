"""Tests for csd_mm.datasets.transforms.PackCAMInputs."""
import csd_mm  # noqa: F401,I001  (first: installs the mmcv-lite ops fallback mmseg needs)
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample

from csd_mm.datasets.transforms import PackCAMInputs


def _results(h=5, w=7, with_mask=True):
    img = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    results = dict(img=img, gt_label=np.array([0, 1, 0, 1], np.float32), img_id='x',
                   img_path='JPEGImages/x.jpg',
                   seg_map_path='SegmentationClassAug/x.png', ori_shape=(h, w), img_shape=(h, w), flip=False,
                   flip_direction=None, reduce_zero_label=False, not_a_meta_key=1)
    if with_mask:
        mask = np.zeros((h, w), np.uint8)
        mask[1:3, 2:4] = 2
        mask[4, :] = 255
        results['gt_seg_map'] = mask
    return results


def test_packs_image_label_mask_and_meta():
    results = _results()
    out = PackCAMInputs().transform(results)
    inputs, sample = out['inputs'], out['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 5, 7)
    assert torch.equal(inputs, torch.from_numpy(results['img']).permute(2, 0, 1))
    assert isinstance(sample, SegDataSample)
    assert sample.gt_label.dtype == torch.float32 and sample.gt_label.tolist() == [0, 1, 0, 1]
    assert isinstance(sample.gt_sem_seg, PixelData)
    assert sample.gt_sem_seg.data.shape == (1, 5, 7) and sample.gt_sem_seg.data.dtype == torch.int64
    assert torch.equal(sample.gt_sem_seg.data[0], torch.from_numpy(results['gt_seg_map']).long())
    assert sample.img_id == 'x' and sample.img_path == 'JPEGImages/x.jpg' and sample.flip is False
    assert sample.ori_shape == (5, 7) and 'not_a_meta_key' not in sample.metainfo
    results['gt_label'][0] = 1  # the sample holds its own copy
    assert sample.gt_label[0] == 0


def test_no_mask_non_contiguous_and_float_image():
    results = _results(with_mask=False)
    results['img'] = results['img'][:, ::-1]  # a flipped view
    out = PackCAMInputs(meta_keys=('img_id', )).transform(results)
    assert 'gt_sem_seg' not in out['data_samples']
    assert set(out['data_samples'].metainfo) == {'img_id'}
    assert torch.equal(out['inputs'], torch.from_numpy(results['img'].copy()).permute(2, 0, 1))
    results['img'] = np.full((5, 7, 3), 254.6, np.float32)
    results['img'][0, 0] = -3.0
    inputs = PackCAMInputs().transform(results)['inputs']
    assert inputs.dtype == torch.uint8 and inputs[0, 0, 0] == 0 and inputs[0, 1, 1] == 255


def test_mask_size_mismatch_names_file_and_sizes():
    results = _results()
    results['gt_seg_map'] = np.zeros((6, 7), np.uint8)
    with pytest.raises(ValueError, match=r'SegmentationClassAug/x.png has size \(6, 7\).*x.jpg.*\(5, 7\)'):
        PackCAMInputs().transform(results)
    results = _results()
    del results['gt_label']
    with pytest.raises(KeyError, match="'gt_label'.*x.jpg"):
        PackCAMInputs().transform(results)
    results = _results()
    del results['img']
    with pytest.raises(KeyError, match="PackCAMInputs needs 'img' in the results of .*x.jpg"):
        PackCAMInputs().transform(results)


def test_registered():
    assert TRANSFORMS.get('PackCAMInputs') is PackCAMInputs
    assert 'meta_keys' in repr(PackCAMInputs())
    assert PackCAMInputs().meta_keys == PackCAMInputs.DEFAULT_META_KEYS
    assert {'img_id', 'img_path', 'ori_shape', 'img_shape', 'flip'} <= set(PackCAMInputs.DEFAULT_META_KEYS)
