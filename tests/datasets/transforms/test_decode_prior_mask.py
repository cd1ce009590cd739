"""Tests of csd_mm/datasets/transforms/decode_prior_mask.py (DecodePriorMask: a bank mask -> fg / bg masks)."""
import numpy as np
import pytest

import csd_mm  # noqa: F401
from mmseg.registry import TRANSFORMS

from csd_mm.datasets.transforms import DecodePriorMask


def test_splits_fg_bg_and_leaves_unsure_out():
    prior = np.array([[1, 0, 255], [0, 1, 1]], np.uint8)
    out = DecodePriorMask()(dict(gt_seg_map=prior, seg_map_path='bank/a.png'))
    # by hand: 1 -> fg, 0 -> bg, 255 (unsure / padding) -> neither
    np.testing.assert_array_equal(out['fg_mask'], [[1, 0, 0], [0, 1, 1]])
    np.testing.assert_array_equal(out['bg_mask'], [[0, 1, 0], [1, 0, 0]])
    assert out['fg_mask'].dtype == np.uint8 and out['bg_mask'].dtype == np.uint8
    assert TRANSFORMS.get('DecodePriorMask') is DecodePriorMask


def test_errors_name_the_file():
    with pytest.raises(KeyError, match='gt_seg_map.*x.jpg'):
        DecodePriorMask()(dict(img_path='x.jpg'))
    with pytest.raises(ValueError, match=r'bank/b.png.*\[2, 7\]'):
        DecodePriorMask()(dict(gt_seg_map=np.array([[0, 2, 7]], np.uint8), seg_map_path='bank/b.png'))
    with pytest.raises(ValueError, match=r'bank/c.png: the source-bank prior mask has size \(1, 3\) but its image '
                                         r'c.jpg has \(2, 3\)'):
        DecodePriorMask()(dict(gt_seg_map=np.zeros((1, 3), np.uint8), seg_map_path='bank/c.png', img_path='c.jpg',
                               img=np.zeros((2, 3, 3), np.uint8)))
