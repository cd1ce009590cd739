import numpy as np
import pytest

import csd_mm  # noqa: F401
from csd_mm.visualization import draw_cam_row

PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)  # RGB
NAMES = ['background', 'a', 'b', 'c']


def test_row_of_image_heatmaps_and_seeds():
    img = np.full((8, 10, 3), 100, np.uint8)
    cam = np.zeros((2, 8, 10), np.float32)
    cam[0, :, :5] = 1.0  # class 0 (mask value 1) on the left, class 2 (value 3) on the right
    cam[1, :, 5:] = 0.9
    row = draw_cam_row(img, cam, np.array([0, 2]), NAMES, PALETTE, threshold=0.5)
    assert row.shape == (8, 40, 3) and row.dtype == np.uint8
    np.testing.assert_array_equal(row[:, :10], img)
    seeds = row[:, 30:].astype(int)  # 0.4 * image + 0.6 * colour, BGR: red left, blue right
    assert seeds[7, 0, 2] > seeds[7, 0, 0] and seeds[7, 9, 0] > seeds[7, 9, 2]
    assert draw_cam_row(img, cam, np.array([0, 2]), NAMES, PALETTE).shape == (8, 30, 3)  # no threshold: no seeds


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r'image size \(8, 10\) differs from CAM size \(4, 5\)'):
        draw_cam_row(np.zeros((8, 10, 3), np.uint8), np.zeros((1, 4, 5), np.float32), np.array([0]), NAMES, PALETTE)
