"""Tests of csd_mm/models/data_preprocessors/multi_view_data_preprocessor.py."""
import pytest
import torch

import csd_mm  # noqa: F401
from csd_mm.models.data_preprocessors import MultiViewDataPreprocessor

MEAN, STD = (10.0, 20.0, 30.0), (2.0, 4.0, 5.0)


def _pre():
    return MultiViewDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True)


def _images(n, v, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (v, 3, 4, 6), generator=g, dtype=torch.uint8) for _ in range(n)]


def test_each_view_is_normalised_like_a_single_image():
    pre = _pre()
    imgs = _images(2, 4)
    out = pre(dict(inputs=imgs, data_samples=None), True)['inputs']
    assert out.shape == (2, 4, 3, 4, 6) and out.dtype == torch.float32
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    for n in range(2):
        for v in range(4):
            # by hand: BGR -> RGB, then (x - mean) / std per channel
            expected = (imgs[n][v].flip(0).float() - mean) / std
            torch.testing.assert_close(out[n, v], expected)
            single = pre(dict(inputs=[imgs[n][v]], data_samples=None), True)['inputs'][0]
            torch.testing.assert_close(out[n, v], single, rtol=0, atol=0)


def test_single_view_path_unchanged():
    pre = _pre()
    imgs = [x[0] for x in _images(3, 1)]
    out = pre(dict(inputs=imgs, data_samples=None), False)['inputs']
    assert out.shape == (3, 3, 4, 6)
    from mmengine.model import ImgDataPreprocessor
    ref = ImgDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True)(dict(inputs=imgs, data_samples=None))
    torch.testing.assert_close(out, ref['inputs'], rtol=0, atol=0)


def test_mismatched_view_counts():
    imgs = _images(1, 4) + _images(1, 3, seed=1)
    with pytest.raises(ValueError, match=r'same number of views.*\[4, 3\]'):
        _pre()(dict(inputs=imgs, data_samples=None), True)
