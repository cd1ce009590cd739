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


def _normalised(img):
    """By hand: BGR -> RGB, then (x - mean) / std per channel."""
    return (img.flip(0).float() - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


def test_each_view_is_normalised_like_a_single_image():
    pre = _pre()
    imgs = _images(2, 4)
    out = pre(dict(inputs=imgs, data_samples=None), True)
    x, pairs = out['inputs'], out['pair_inputs']
    assert x.shape == (2, 3, 4, 6) and x.dtype == torch.float32
    assert pairs.shape == (2, 3, 3, 4, 6)
    for n in range(2):
        torch.testing.assert_close(x[n], _normalised(imgs[n][0]))
        for v in range(1, 4):
            torch.testing.assert_close(pairs[n, v - 1], _normalised(imgs[n][v]))
            single = pre(dict(inputs=[imgs[n][v]], data_samples=None), True)['inputs'][0]
            torch.testing.assert_close(pairs[n, v - 1], single, rtol=0, atol=0)


def test_mixed_batch_of_single_images_and_pairs():
    pre = _pre()
    single, pair = _images(2, 1, seed=1), _images(2, 4, seed=2)
    batch = [single[0], pair[0], single[1], pair[1]]  # views (1, 4, 1, 4)
    out = pre(dict(inputs=batch, data_samples=None), True)
    x, pairs = out['inputs'], out['pair_inputs']
    assert x.shape == (4, 3, 4, 6)  # every sample's first view: no view invented for the single images
    for n, sample in enumerate(batch):
        torch.testing.assert_close(x[n], _normalised(sample[0]))
    assert pairs.shape == (2, 3, 3, 4, 6)  # the other views of the two pairs, in batch order
    for p, sample in enumerate((pair[0], pair[1])):
        for v in range(1, 4):
            torch.testing.assert_close(pairs[p, v - 1], _normalised(sample[v]))
    # a batch of unpaired samples only: the baseline's (N, 3, H, W), no pair_inputs
    out = pre(dict(inputs=single, data_samples=None), True)
    assert out['inputs'].shape == (2, 3, 4, 6) and 'pair_inputs' not in out


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
    with pytest.raises(ValueError, match=r'one view count.*\[4, 3\]'):
        _pre()(dict(inputs=imgs, data_samples=None), True)
