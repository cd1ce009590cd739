"""Tests of the pure copy-paste maths (csd_mm/datasets/transforms/copy_paste_functional.py)."""
import numpy as np
import pytest

from csd_mm.datasets.transforms.copy_paste_functional import paste, soften_mask


def _images(h=3, w=4):
    target = np.full((h, w, 3), 10, dtype=np.uint8)
    target[..., 1] = 20
    source = (np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3) + 100).astype(np.uint8)
    return target, source


MASK = np.array([[1, 0, 0, 1],
                 [0, 1, 1, 0],
                 [0, 0, 0, 1]], dtype=np.uint8)


def test_hard_paste_copies_exact_pixels():
    target, source = _images()
    out = paste(target, source, MASK)
    assert out.dtype == np.uint8 and out.shape == target.shape
    for y in range(3):
        for x in range(4):
            expected = source[y, x] if MASK[y, x] == 1 else target[y, x]
            assert out[y, x].tolist() == expected.tolist(), (y, x)
    # inputs untouched
    assert (target[..., 0] == 10).all() and source[0, 0, 0] == 100


@pytest.mark.parametrize('mask', [MASK.astype(bool), MASK.astype(np.int64), MASK.astype(np.float32)])
def test_hard_paste_mask_dtypes_agree(mask):
    target, source = _images()
    assert np.array_equal(paste(target, source, mask), paste(target, source, MASK))


def test_empty_and_full_masks():
    target, source = _images()
    assert np.array_equal(paste(target, source, np.zeros((3, 4), np.uint8)), target)
    assert np.array_equal(paste(target, source, np.ones((3, 4), np.uint8)), source)


def test_soft_paste_rounding_uint8():
    target = np.array([[[10], [10], [10], [0]]], dtype=np.uint8)
    source = np.array([[[21], [20], [20], [255]]], dtype=np.uint8)
    mask = np.array([[0.5, 0.25, 0.75, 0.999]], dtype=np.float32)
    out = paste(target, source, mask)
    # 15.5 -> 16 (half to even), 12.5 -> 12 (half to even), 17.5 -> 18, 254.745 -> 255
    assert out.dtype == np.uint8
    assert out[0, :, 0].tolist() == [16, 12, 18, 255]


def test_soft_paste_float_image_is_exact_blend():
    target = np.full((1, 2, 3), 10.0, dtype=np.float32)
    source = np.full((1, 2, 3), 20.0, dtype=np.float32)
    out = paste(target, source, np.array([[0.25, 0.5]]))
    assert out.dtype == np.float32
    assert out[0, 0].tolist() == [12.5] * 3 and out[0, 1].tolist() == [15.0] * 3


def test_grayscale_image():
    target = np.zeros((2, 2), dtype=np.uint8)
    source = np.full((2, 2), 7, dtype=np.uint8)
    out = paste(target, source, np.array([[1, 0], [0, 1]], dtype=np.uint8))
    assert out.tolist() == [[7, 0], [0, 7]]


def test_paste_bad_inputs():
    target, source = _images()
    with pytest.raises(ValueError, match='same shape'):
        paste(target, source[:2], MASK)
    with pytest.raises(ValueError, match='same dtype'):
        paste(target, source.astype(np.float32), MASK)
    with pytest.raises(ValueError, match='does not match'):
        paste(target, source, MASK[:2])
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        paste(target, source, MASK * 255)
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        paste(target, source, np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match=r'paste: mask must have shape \[H, W\]'):
        paste(target, source, MASK[..., None])


def test_soften_mask_sigma_zero_is_the_hard_mask():
    out = soften_mask(MASK, 0)
    assert out.dtype == np.float32 and out.tolist() == MASK.astype(np.float32).tolist()


def test_soften_mask_feathers_symmetrically():
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[:, :16] = 1                                   # left half inside
    soft = soften_mask(mask, 2.0)
    assert soft.dtype == np.float32 and soft.min() >= 0 and soft.max() <= 1
    assert soft[:, 0].min() == pytest.approx(1.0, abs=1e-6)   # far inside (and at the reflected border)
    assert soft[:, -1].max() == pytest.approx(0.0, abs=1e-6)  # far outside
    # edge between columns 15 and 16: the symmetric kernel splits it, the two sides sum to 1
    assert 0.5 < soft[10, 15] < 1.0 and 0.0 < soft[10, 16] < 0.5
    np.testing.assert_allclose(soft[:, 15] + soft[:, 16], 1.0, atol=1e-6)
    # monotone across the edge
    assert (np.diff(soft[10]) <= 1e-7).all()
    # blur is linear: soften(1 - M) == 1 - soften(M)
    np.testing.assert_allclose(soften_mask(1 - mask, 2.0), 1 - soft, atol=1e-6)


def test_soften_mask_bad_sigma():
    with pytest.raises(ValueError, match='sigma'):
        soften_mask(MASK, -1.0)


@pytest.mark.parametrize('shape', [(7, 9), (7, 9, 1), (7, 9, 3), (7, 9, 4), (7, 9, 5)])
@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64])
def test_hard_paste_is_an_exact_selection_for_every_layout(shape, dtype):
    """The cv2.copyTo fast path and the np.where fallback give the definition's pixels, also for views."""
    rng = np.random.default_rng(0)
    target = np.repeat((rng.random(shape) * 100).astype(dtype), 2, axis=0)[::2]  # a non-contiguous view
    source = (rng.random(shape) * 100).astype(dtype)
    mask = (rng.random((14, 18)) < 0.5)[::2, ::2]
    for m in (mask, mask.astype(np.uint8), mask.astype(np.float32)):
        out = paste(target, source, m)
        expected = np.where(mask if len(shape) == 2 else mask[..., None], source, target)
        assert out.shape == expected.shape and out.dtype == expected.dtype
        np.testing.assert_array_equal(out, expected)
        assert not np.shares_memory(out, target)
