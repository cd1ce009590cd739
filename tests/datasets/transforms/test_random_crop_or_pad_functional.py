"""Tests of csd_mm/datasets/transforms/random_crop_or_pad_functional.py (IRN's crop-or-pad, hand-computed)."""
import numpy as np
import pytest

from csd_mm.datasets.transforms.random_crop_or_pad_functional import crop_or_pad, shift_range


def test_shift_range_larger_smaller_equal():
    assert shift_range(5, 3) == (-2, 0)  # larger: the crop window starts at image row 0, 1 or 2
    assert shift_range(3, 5) == (0, 2)  # smaller: the image starts at container row 0, 1 or 2
    assert shift_range(4, 4) == (0, 0)
    assert shift_range(1, 512) == (0, 511)


@pytest.mark.parametrize('size, crop', [(0, 3), (3, 0), (2.0, 3), (True, 3)])
def test_shift_range_rejects_bad_lengths(size, crop):
    with pytest.raises(ValueError, match='shift_range needs a positive integer'):
        shift_range(size, crop)


def test_docstring_example_pad_rows_crop_columns():
    arr = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.uint8)
    out = crop_or_pad(arr, (3, 3), (1, -1), 9)
    np.testing.assert_array_equal(out, [[9, 9, 9], [1, 2, 3], [5, 6, 7]])
    assert out.dtype == np.uint8


def test_larger_on_both_axes_is_a_crop():
    arr = np.arange(20).reshape(4, 5)
    out = crop_or_pad(arr, (2, 3), (-1, -2), -1)
    np.testing.assert_array_equal(out, [[7, 8, 9], [12, 13, 14]])  # rows 1-2, columns 2-4
    np.testing.assert_array_equal(crop_or_pad(arr, (2, 3), (0, 0), -1), [[0, 1, 2], [5, 6, 7]])
    np.testing.assert_array_equal(crop_or_pad(arr, (2, 3), (-2, -2), -1), [[12, 13, 14], [17, 18, 19]])


def test_smaller_on_both_axes_is_placed_inside_with_per_channel_pad():
    img = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)  # 1 x 2, 3 channels
    out = crop_or_pad(img, (3, 4), (2, 1), (104, 116, 124))
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    expected = np.empty((3, 4, 3), np.uint8)
    expected[...] = (104, 116, 124)
    expected[2, 1] = (1, 2, 3)
    expected[2, 2] = (4, 5, 6)
    np.testing.assert_array_equal(out, expected)
    # the top-left corner is one valid placement too (what mmcv's Pad always does)
    corner = crop_or_pad(img, (3, 4), (0, 0), (104, 116, 124))
    np.testing.assert_array_equal(corner[0, :2], img[0])
    np.testing.assert_array_equal(corner[1:], expected[:2])


def test_equal_size_is_a_copy():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = crop_or_pad(arr, (2, 3), (0, 0), 0.5)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.float32 and not np.shares_memory(out, arr)


def test_float_array_keeps_a_float_pad_value():
    out = crop_or_pad(np.ones((1, 1), np.float32), (1, 2), (0, 1), 0.25)
    np.testing.assert_array_equal(out, np.array([[0.25, 1.0]], np.float32))


def test_same_shift_keeps_image_and_label_aligned():
    # the label of each pixel is its image value, so alignment means: label == img[..., 0] wherever not padded
    rng = np.random.default_rng(0)
    label = rng.integers(0, 21, size=(5, 7)).astype(np.uint8)
    img = np.repeat(label[..., None], 3, axis=2)
    for shift in [(-1, 0), (0, 2), (-2, 1), (0, 0)]:
        out_img = crop_or_pad(img, (3, 9), shift, (200, 201, 202))
        out_lab = crop_or_pad(label, (3, 9), shift, 255)
        inside = out_lab != 255
        np.testing.assert_array_equal(out_img[..., 0][inside], out_lab[inside])
        assert np.all(out_img[~inside] == (200, 201, 202))
        assert inside.sum() == 3 * 7  # 3 of the 5 rows, all 7 columns


def test_mixed_axes_hand_computed_positions():
    # 3 x 1 image into a 2 x 3 container: rows cropped from row 1, column placed at container column 2
    arr = np.array([[10], [20], [30]], np.uint8)
    out = crop_or_pad(arr, (2, 3), (-1, 2), 255)
    np.testing.assert_array_equal(out, [[255, 255, 20], [255, 255, 30]])


@pytest.mark.parametrize('shift', [(1, 0), (-3, 0), (0, 3), (0, -1), (0.5, 0)])
def test_out_of_range_shift_is_an_error(shift):
    with pytest.raises(ValueError, match='crop_or_pad: a shift'):
        crop_or_pad(np.zeros((4, 2), np.uint8), (2, 4), shift, 0)


def test_pad_value_errors():
    img = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match='not representable.*uint8.*round it'):
        crop_or_pad(img, (3, 3), (0, 0), (103.53, 116.28, 123.675))
    with pytest.raises(ValueError, match='not representable'):
        crop_or_pad(img, (3, 3), (0, 0), 256)
    with pytest.raises(ValueError, match='one number per channel'):
        crop_or_pad(img, (3, 3), (0, 0), (1, 2))
    with pytest.raises(ValueError, match='one number per channel'):
        crop_or_pad(img[..., 0], (3, 3), (0, 0), (1, 2, 3))
    with pytest.raises(ValueError, match='finite'):
        crop_or_pad(img.astype(np.float32), (3, 3), (0, 0), float('nan'))


def test_array_errors():
    with pytest.raises(ValueError, match=r'\[H, W\] or \[H, W, C\]'):
        crop_or_pad(np.zeros(4), (2, 2), (0, 0), 0)
    with pytest.raises(ValueError, match=r'\(h, w\) pairs'):
        crop_or_pad(np.zeros((2, 2)), (2, ), (0, 0), 0)
