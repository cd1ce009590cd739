"""CAM and mask drawing: the pure heat-map colouring, blending and row stacking on hand-computed pixels, and rows
drawn through mmseg's SegLocalVisualizer."""
import numpy as np
import pytest

import csd_mm  # noqa: F401
from csd_mm.visualization import blend, cam_heatmap, draw_cam_row, draw_result_row, stack_rows

PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)  # RGB
NAMES = ['background', 'a', 'b', 'c']


def test_heatmap_keeps_the_absolute_scale():
    heat = cam_heatmap(np.array([[0.0, 1.0, 2.0, -1.0]], np.float32))
    assert heat.shape == (1, 4, 3) and heat.dtype == np.uint8
    # OpenCV's JET, as RGB: 0 -> dark blue (0, 0, 128), 1 -> dark red (128, 0, 0); out of [0, 1] is clipped
    np.testing.assert_array_equal(heat[0], [[0, 0, 128], [128, 0, 0], [128, 0, 0], [0, 0, 128]])
    faint = cam_heatmap(np.full((1, 1), 0.2, np.float32))
    assert faint[0, 0, 2] > faint[0, 0, 0]  # a faint CAM stays blue (no per-map rescaling)


def test_blend_and_stack_on_hand_computed_pixels():
    img = np.full((1, 1, 3), 100, np.uint8)
    over = np.array([[[200, 0, 51]]], np.uint8)
    np.testing.assert_array_equal(blend(img, over, 0.5), [[[150, 50, 76]]])  # 75.5 rounds to even: 76
    rows = stack_rows([np.zeros((2, 3, 3), np.uint8), np.zeros((1, 1, 3), np.uint8)], gap=1)
    assert rows.shape == (4, 3, 3)
    assert (rows[2] == 255).all() and (rows[3, 1:] == 255).all() and (rows[3, 0] == 0).all()
    with pytest.raises(ValueError, match='at least one row'):
        stack_rows([])


def test_row_of_image_heatmaps_seeds_and_masks():
    img = np.full((32, 40, 3), 100, np.uint8)
    cam = np.zeros((2, 32, 40), np.float32)
    cam[0, :, :20] = 1.0  # class 0 (mask value 1) on the left, class 2 (value 3) on the right
    cam[1, :, 20:] = 0.9
    gt = np.full((32, 40), 255, np.uint8)
    gt[:, :20] = 1
    row = draw_result_row(img, cam, np.array([0, 2]), NAMES, PALETTE, threshold=0.5, pseudo_mask=gt, gt=gt)
    assert row.shape == (32, 240, 3) and row.dtype == np.uint8
    np.testing.assert_array_equal(row[:, :40], img)  # no title: the image as it is
    # below the titles, SegLocalVisualizer's colours: 0.4 * image + 0.6 * palette colour (RGB)
    seeds = row[20:, 120:160].astype(int)
    np.testing.assert_array_equal(seeds[-1, 0], [193, 40, 40])  # red, value 1
    np.testing.assert_array_equal(seeds[-1, -1], [40, 40, 193])  # blue, value 3
    truth = row[20:, 200:240].astype(int)
    np.testing.assert_array_equal(truth[-1, 0], [193, 40, 40])
    np.testing.assert_array_equal(truth[-1, -1], [40, 40, 40])  # 255 (ignored) is not drawn: mmseg's black mask
    heat = row[20:, 40:80].astype(int)  # 0.5 * image + 0.5 * JET(1.0) = (128, 0, 0) on the left half
    np.testing.assert_array_equal(heat[-1, 0], [114, 50, 50])
    big = draw_result_row(img, cam, np.array([0, 2]), NAMES, PALETTE, title='run', scale=2)
    assert big.shape == (64, 240, 3)
    assert not (big[:, :80] == 100).all()  # the title is drawn on the image panel


def test_cam_row_is_bgr_in_and_out():
    img = np.zeros((8, 10, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    cam = np.zeros((1, 8, 10), np.float32)
    row = draw_cam_row(img, cam, np.array([0]), NAMES, PALETTE, threshold=0.5)
    assert row.shape == (8, 30, 3)
    np.testing.assert_array_equal(row[:, :10], img)
    assert draw_cam_row(img, cam, np.array([0]), NAMES, PALETTE).shape == (8, 20, 3)  # no threshold: no seeds


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r'image size \(8, 10\) differs from CAM size \(4, 5\)'):
        draw_cam_row(np.zeros((8, 10, 3), np.uint8), np.zeros((1, 4, 5), np.float32), np.array([0]), NAMES, PALETTE)
    with pytest.raises(ValueError, match=r'differs from ground truth size \(3, 3\)'):
        draw_result_row(np.zeros((8, 10, 3), np.uint8), np.zeros((1, 8, 10), np.float32), np.array([0]), NAMES,
                        PALETTE, gt=np.zeros((3, 3), np.uint8))
