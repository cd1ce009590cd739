"""Tests of csd_mm/datasets/transforms/random_crop_or_pad.py (RandomCropOrPad, IRN's random crop)."""
import csd_mm  # noqa: F401,I001  (first: installs the mmcv-lite ops fallback mmseg needs)
import cv2
import numpy as np
import pytest
from mmcv.transforms import Compose, LoadImageFromFile, RandomFlip
from mmcv.transforms.utils import cache_random_params
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from csd_mm.datasets.transforms import PackCAMInputs, RandomCropOrPad

MEAN_BGR = (104, 116, 124)


def _files(tmp_path, h=6, w=10):
    """A PNG image whose blue channel is the label map, and that label map (values 0-20, 255 nowhere)."""
    rng = np.random.default_rng(0)
    label = rng.integers(0, 21, size=(h, w)).astype(np.uint8)
    img = np.stack([label, np.full_like(label, 50), np.full_like(label, 60)], axis=-1)
    cv2.imwrite(str(tmp_path / 'img.png'), img)
    cv2.imwrite(str(tmp_path / 'seg.png'), label)
    return dict(img_path=str(tmp_path / 'img.png'), seg_map_path=str(tmp_path / 'seg.png'),
                reduce_zero_label=False, seg_fields=[], gt_label=np.ones(20, np.float32)), img, label


def test_registered_and_built_by_name():
    t = TRANSFORMS.build(dict(type='RandomCropOrPad', crop_size=4, img_pad_val=MEAN_BGR))
    assert isinstance(t, RandomCropOrPad)
    assert t.crop_size == (4, 4) and t.img_pad_val == (104.0, 116.0, 124.0) and t.seg_pad_val == 255
    assert repr(t) == 'RandomCropOrPad(crop_size=(4, 4), img_pad_val=(104.0, 116.0, 124.0), seg_pad_val=255)'


def test_in_compose_with_loaded_annotations_keeps_mask_aligned(tmp_path):
    results, img, label = _files(tmp_path)  # 6 x 10 into 8 x 8: rows padded, columns cropped
    pipeline = Compose([
        dict(type=LoadImageFromFile),
        dict(type=LoadAnnotations),
        dict(type=RandomFlip, prob=0.5),
        dict(type=RandomCropOrPad, crop_size=(8, 8), img_pad_val=MEAN_BGR, seg_pad_val=255),
    ])
    np.random.seed(0)
    shifts = set()
    for _ in range(60):
        out = pipeline(dict(results, seg_fields=[]))
        out_img, out_seg = out['img'], out['gt_seg_map']
        assert out_img.shape == (8, 8, 3) and out_img.dtype == np.uint8
        assert out_seg.shape == (8, 8) and out_seg.dtype == np.uint8 and out['img_shape'] == (8, 8)
        inside = out_seg != 255
        # the mask follows the image pixel for pixel; padding is the mean colour / ignore
        np.testing.assert_array_equal(out_img[..., 0][inside], out_seg[inside])
        assert np.all(out_img[..., 1][inside] == 50)
        assert np.all(out_img[~inside] == MEAN_BGR)
        rows = np.flatnonzero(inside.any(axis=1))
        assert inside.sum() == 6 * 8 and len(rows) == 6 and rows[-1] - rows[0] == 5
        # the 8 columns come from the (possibly flipped) image at a column offset of 0, 1 or 2
        src = label[:, ::-1] if out['flip'] else label
        top = rows[0]
        left = [c for c in range(3) if np.array_equal(src[:, c:c + 8], out_seg[top:top + 6])]
        assert len(left) == 1
        shifts.add((int(top), left[0]))
    # IRN: the image lands anywhere (rows 0..2) and the window starts anywhere (columns 0..2), not bottom / right
    assert shifts == {(t, c) for t in range(3) for c in range(3)}


def test_every_seg_field_moves_with_the_image():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    prior = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)
    # 'gt_seg_map' listed twice (a shared seg_fields list that LoadAnnotations appended to) still moves once
    results = dict(img=img, gt_seg_map=prior.copy(), prior=prior * 2, seg_fields=['prior', 'gt_seg_map', 'prior'])
    np.random.seed(1)
    out = RandomCropOrPad(crop_size=(4, 3), img_pad_val=7, seg_pad_val=255)(results)
    top = int(np.flatnonzero(out['img'][:, 0, 0] != 7)[0])
    np.testing.assert_array_equal(out['img'][top:top + 2], img)
    np.testing.assert_array_equal(out['gt_seg_map'][top:top + 2], prior)
    np.testing.assert_array_equal(out['prior'][top:top + 2], prior * 2)
    assert np.all(np.delete(out['prior'], [top, top + 1], axis=0) == 255)


def test_randomness_is_cacheable():
    t = RandomCropOrPad(crop_size=(5, 5), img_pad_val=0)
    img = np.arange(9, dtype=np.uint8).reshape(3, 3)
    with cache_random_params(t):
        first = t(dict(img=img))['img']
        for _ in range(5):
            np.testing.assert_array_equal(t(dict(img=img))['img'], first)


def test_packed_output(tmp_path):
    results, _, _ = _files(tmp_path, h=3, w=3)
    pipeline = Compose([dict(type=LoadImageFromFile), dict(type=LoadAnnotations),
                        dict(type=RandomCropOrPad, crop_size=(4, 4), img_pad_val=MEAN_BGR),
                        dict(type=PackCAMInputs)])
    packed = pipeline(results)
    assert packed['inputs'].shape == (3, 4, 4)
    sample = packed['data_samples']
    assert sample.img_shape == (4, 4) and sample.gt_sem_seg.data.shape == (1, 4, 4)
    assert int((sample.gt_sem_seg.data == 255).sum()) == 16 - 9


def test_errors():
    with pytest.raises(ValueError, match='RandomCropOrPad: crop_size'):
        RandomCropOrPad(crop_size=(4, 0))
    with pytest.raises(ValueError, match='RandomCropOrPad: crop_size'):
        RandomCropOrPad(crop_size=(4, 4, 4))
    with pytest.raises(ValueError, match='RandomCropOrPad: seg_pad_val'):
        RandomCropOrPad(crop_size=4, seg_pad_val=256)
    with pytest.raises(ValueError, match='RandomCropOrPad: img_pad_val'):
        RandomCropOrPad(crop_size=4, img_pad_val='mean')
    img = np.zeros((3, 3, 3), np.uint8)
    t = RandomCropOrPad(crop_size=4)
    with pytest.raises(KeyError, match='RandomCropOrPad: results has no "img" \\(a.jpg\\)'):
        t(dict(img_path='a.jpg'))
    with pytest.raises(ValueError, match=r"RandomCropOrPad: results\['gt_seg_map'\] has shape \(2, 3\)"):
        t(dict(img=img, gt_seg_map=np.zeros((2, 3), np.uint8)))
    with pytest.raises(KeyError, match="RandomCropOrPad: seg_fields names 'prior'"):
        t(dict(img=img, seg_fields=['prior']))
    with pytest.raises(ValueError, match='not representable'):  # unrounded mean on a uint8 image
        RandomCropOrPad(crop_size=4, img_pad_val=(103.53, 116.28, 123.675))(dict(img=img))
