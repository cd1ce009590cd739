"""Tests of the label-map geometry (csd_mm/datasets/transforms/mask_aware_functional.py) on hand-computed maps."""
import numpy as np
import pytest
from PIL import Image

from csd_mm.datasets.transforms.mask_aware_functional import (check_seg_pad_val, crop_resize_seg, nearest_resize,
                                                               rotate_seg, seg_keys, shear_seg, translate_offset,
                                                               translate_seg)

GRID = np.arange(1, 10, dtype=np.uint8).reshape(3, 3)  # [[1 2 3] [4 5 6] [7 8 9]]


def test_nearest_resize_by_hand():
    # upscale x2: each pixel twice
    assert nearest_resize(np.array([[1, 2, 3]]), (1, 6)).tolist() == [[1, 1, 2, 2, 3, 3]]
    # 4 -> 2: centres x = (0.5, 1.5) * 2 = 1, 3 -> pixels 1 and 3 (values 2, 4)
    assert nearest_resize(np.array([[1, 2, 3, 4]]), (1, 2)).tolist() == [[2, 4]]
    # 3 -> 2: centres 0.75, 2.25 -> pixels 0 and 2
    assert nearest_resize(np.array([[1, 2, 3]]), (1, 2)).tolist() == [[1, 3]]
    # both axes, any dtype kept
    out = nearest_resize(GRID.astype(np.int64), (6, 3))
    assert out.dtype == np.int64 and out.tolist() == [[1, 2, 3]] * 2 + [[4, 5, 6]] * 2 + [[7, 8, 9]] * 2
    with pytest.raises(ValueError, match='nearest_resize needs a positive'):
        nearest_resize(GRID, (0, 3))


def test_nearest_resize_equals_pil_nearest():
    """PIL's NEAREST (the resize backend of the image) pixel for pixel, exact ties included."""
    rng = np.random.default_rng(0)
    sizes = [(36, 27), (48, 73), (56, 29), (40, 52), (224, 224)]  # several with exact ties
    for _ in range(60):
        sizes.append(tuple(int(v) for v in rng.integers(1, 300, 2)))
    for i, (size_in, size_out) in enumerate(sizes):
        seg = rng.integers(0, 256, (size_in // 2 + 1, size_in)).astype(np.uint8)
        out_hw = (size_out // 3 + 1, size_out)
        expected = np.asarray(Image.fromarray(seg).resize(out_hw[::-1], Image.NEAREST))
        assert np.array_equal(nearest_resize(seg, out_hw), expected), (i, seg.shape, out_hw)


def test_crop_resize_seg_by_hand():
    seg = np.arange(16, dtype=np.uint8).reshape(4, 4)
    # box (top 1, left 1, 2 x 2) = [[5 6] [9 10]], resized to 4 x 4: each pixel a 2 x 2 block
    out = crop_resize_seg(seg, (1, 1, 2, 2), (4, 4))
    assert out.tolist() == [[5, 5, 6, 6], [5, 5, 6, 6], [9, 9, 10, 10], [9, 9, 10, 10]]
    assert crop_resize_seg(seg, (0, 2, 4, 2), (2, 1)).tolist() == [[7], [15]]  # rows 1, 3 of column 3
    with pytest.raises(ValueError, match='not inside'):
        crop_resize_seg(seg, (3, 0, 2, 2), (2, 2))


def test_translate_offset_by_hand():
    assert translate_offset(0.25, (8, 12), 'horizontal') == 3.0  # x width
    assert translate_offset(-0.25, (8, 12), 'vertical') == -2.0  # x height
    with pytest.raises(ValueError, match='direction'):
        translate_offset(0.1, (8, 12), 'diagonal')


def test_rotate_seg_by_hand():
    # +90 degrees is clockwise (mmcv.imrotate), about the centre
    assert rotate_seg(GRID, 90).tolist() == [[7, 4, 1], [8, 5, 2], [9, 6, 3]]
    # 45 degrees: the four corners come from outside -> 255, the rest keeps its label
    out = rotate_seg(np.zeros((5, 5), np.uint8), 45)
    assert out.tolist() == [[255, 0, 0, 0, 255]] + [[0] * 5] * 3 + [[255, 0, 0, 0, 255]]
    assert rotate_seg(np.zeros((5, 5), np.uint8), 45, pad_val=7)[0, 0] == 7


def test_shear_seg_by_hand():
    seg = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    # horizontal factor 1: row y moves right by y pixels
    assert shear_seg(seg, 1.0).tolist() == [[1, 2, 3], [255, 4, 5]]
    # vertical factor 1: column x moves down by x pixels
    assert shear_seg(seg.T.copy(), 1.0, 'vertical').tolist() == [[1, 255], [2, 4], [3, 5]]


def test_translate_seg_by_hand():
    seg = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert translate_seg(seg, 1.0).tolist() == [[255, 0, 1, 2], [255, 4, 5, 6], [255, 8, 9, 10]]
    # int64 is not a cv2 dtype: warped exactly through float64, dtype kept
    out = translate_seg(seg.astype(np.int64), -1.0, 'vertical')
    assert out.dtype == np.int64 and out.tolist() == [[4, 5, 6, 7], [8, 9, 10, 11], [255] * 4]


def test_seg_keys_collects_and_checks():
    img = np.zeros((4, 5, 3), np.uint8)
    seg = np.zeros((4, 5), np.uint8)
    assert seg_keys({'img': img}, 'MyTransform') == []
    assert seg_keys({'img': img, 'gt_seg_map': seg}, 'MyTransform') == ['gt_seg_map']  # even without seg_fields
    assert seg_keys({'img': img, 'gt_seg_map': seg, 'extra': seg,
                     'seg_fields': ['extra', 'gt_seg_map', 'extra']}, 'MyTransform') == ['extra', 'gt_seg_map']
    with pytest.raises(KeyError, match="MyTransform: seg_fields names 'extra'"):
        seg_keys({'img': img, 'seg_fields': ['extra']}, 'MyTransform')
    with pytest.raises(ValueError, match=r"MyTransform: results\['gt_seg_map'\] has shape \(4, 4\).*a.jpg"):
        seg_keys({'img': img, 'gt_seg_map': seg[:, :4], 'img_path': 'a.jpg'}, 'MyTransform')
    with pytest.raises(KeyError, match='MyTransform: results has no "img"'):
        seg_keys({'gt_seg_map': seg}, 'MyTransform')


def test_check_seg_pad_val():
    assert check_seg_pad_val(255, 'MyTransform') == 255 and check_seg_pad_val(np.uint8(0), 'MyTransform') == 0
    for bad in (256, -1, 1.5, True, '255'):
        with pytest.raises(ValueError, match='MyTransform: seg_pad_val'):
            check_seg_pad_val(bad, 'MyTransform')
