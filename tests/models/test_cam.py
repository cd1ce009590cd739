"""Tests of csd_mm/models/cam.py (pure CAM functions)."""
import pytest
import torch

from csd_mm.models.cam import (aggregate_multiscale, minmax_normalize_cams, normalize_cams, present_classes,
                               strided_up_size)


def test_normalize_cams_hand_numbers():
    cams = torch.tensor([[[-1.0, 2.0], [4.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]], [[-3.0, -1.0], [-2.0, -5.0]]])
    out = normalize_cams(cams, eps=1e-5)
    expected0 = torch.tensor([[0.0, 2.0], [4.0, 0.0]]) / (4.0 + 1e-5)
    assert torch.allclose(out[0], expected0)
    assert torch.equal(out[1], torch.zeros(2, 2))  # empty map stays zero, no NaN
    assert torch.equal(out[2], torch.zeros(2, 2))  # ReLU first
    assert out[0].max().item() == pytest.approx(1.0, abs=1e-5)


def test_normalize_cams_empty_and_errors():
    assert normalize_cams(torch.zeros(0, 3, 4)).shape == (0, 3, 4)
    with pytest.raises(ValueError, match='normalize_cams expects.*\\(K, H, W\\)'):
        normalize_cams(torch.zeros(3, 4))


def test_minmax_normalize_cams_hand_numbers():
    """MCTformer's rule: a map with a floor (refined attention) spans [0, 1]; max normalisation keeps the floor."""
    cams = torch.tensor([[[2.0, 3.0], [6.0, 2.5]], [[1.5, 1.5], [1.5, 1.5]], [[0.0, 1.0], [2.0, 4.0]]])
    out = minmax_normalize_cams(cams, eps=1e-8)
    assert torch.allclose(out[0], torch.tensor([[0.0, 1.0], [4.0, 0.5]]) / (4.0 + 1e-8))
    assert torch.equal(out[1], torch.zeros(2, 2))  # a constant map: zero everywhere, no NaN
    assert torch.allclose(out[2], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))  # a map reaching 0: as max-normalised
    assert normalize_cams(cams)[0].min().item() == pytest.approx(2.0 / 6.0, abs=1e-4)  # the floor kept
    assert minmax_normalize_cams(torch.zeros(0, 3, 4)).shape == (0, 3, 4)
    with pytest.raises(ValueError, match=r'minmax_normalize_cams expects.*\(K, H, W\)'):
        minmax_normalize_cams(torch.zeros(3, 4))


def _const(value, channels=2):
    def score_fn(x):
        return torch.full((x.shape[0], channels, (x.shape[2] + 1) // 2, (x.shape[3] + 1) // 2), float(value))
    return score_fn


def test_aggregate_constant_counts_scales_and_flips():
    img = torch.zeros(1, 3, 6, 8)
    out = aggregate_multiscale(_const(1.0), img)  # 4 scales x 2 (image + flip)
    assert out.shape == (2, 6, 8)
    assert torch.allclose(out, torch.full_like(out, 8.0))
    out = aggregate_multiscale(_const(1.0), img, flip=False)
    assert torch.allclose(out, torch.full_like(out, 4.0))
    out = aggregate_multiscale(_const(-1.0), img)  # ReLU before summing
    assert torch.equal(out, torch.zeros_like(out))


def test_aggregate_rescales_the_image():
    img = torch.zeros(1, 3, 4, 4)

    def width(x):  # the score is the width of the image it got
        return torch.full((x.shape[0], 1, 2, 2), float(x.shape[-1]))

    out = aggregate_multiscale(width, img, scales=(1.0, 0.5, 2.0), flip=False)
    assert torch.allclose(out, torch.full((1, 4, 4), 4.0 + 2.0 + 8.0))
    out = aggregate_multiscale(width, torch.zeros(1, 3, 5, 5), scales=(1.5, ), flip=False)
    assert torch.allclose(out, torch.full((1, 5, 5), 8.0))  # round(7.5) = 8


def test_aggregate_flip_is_undone():
    # a horizontal ramp that ignores the image: its flip pair sums to a constant only if flipped back...
    def ramp(x):
        return torch.arange(4.0).view(1, 1, 1, 4).expand(x.shape[0], 1, 2, 4)

    img = torch.zeros(1, 3, 2, 4)
    out = aggregate_multiscale(ramp, img, scales=(1.0, ), flip=True)
    assert torch.allclose(out, torch.full((1, 2, 4), 3.0))  # [0,1,2,3] + [3,2,1,0]
    # ...while a map that follows the image comes back where it was: 2 * relu(x)
    x = torch.tensor([[1.0, -2.0, 3.0, 0.5], [0.0, 4.0, -1.0, 2.0]]).view(1, 1, 2, 4).expand(1, 3, 2, 4)
    out = aggregate_multiscale(lambda t: t[:, :1], x, scales=(1.0, ), flip=True)
    assert torch.allclose(out[0], 2 * x[0, 0].clamp(min=0))


def test_aggregate_flip_invariance():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 2, 3, padding=1)
    img = torch.randn(1, 3, 8, 10)
    with torch.no_grad():
        a = aggregate_multiscale(conv, img, scales=(1.0, 0.5), flip=True)
        b = aggregate_multiscale(conv, img.flip(-1), scales=(1.0, 0.5), flip=True)
    assert torch.allclose(a, b.flip(-1), atol=1e-5)


def test_aggregate_upsamples_bilinearly_to_out_size():
    def two_cells(x):
        return torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(x.shape[0], 1, 1, 2)

    out = aggregate_multiscale(two_cells, torch.zeros(1, 3, 2, 2), scales=(1.0, ), flip=False, out_size=(1, 4))
    assert torch.allclose(out, torch.tensor([[[0.0, 0.25, 0.75, 1.0]]]))


def test_strided_up_size_hand_numbers():
    assert strided_up_size((33, 32), 16) == (48, 32)
    assert strided_up_size((1, 1), 16) == (16, 16)
    assert strided_up_size((500, 375), 16) == (512, 384)  # a VOC image size
    assert strided_up_size((5, 8), 4) == (8, 8)
    assert strided_up_size((7, 3), 1) == (7, 3)
    for stride in (0, -16, 2.0, True, None):
        with pytest.raises(ValueError, match='strided_up_size: output_stride must be a positive integer'):
            strided_up_size((5, 5), stride)
    with pytest.raises(ValueError, match='strided_up_size needs a non-empty size'):
        strided_up_size((0, 5), 16)


def _one_hot_top_left(x):
    """A stride-4 score map (ceil(h / 4) x ceil(w / 4)) that is 1 in its top-left cell, 0 elsewhere."""
    maps = torch.zeros(x.shape[0], 1, (x.shape[2] + 3) // 4, (x.shape[3] + 3) // 4)
    maps[:, :, 0, 0] = 1.0
    return maps


def test_aggregate_output_stride_upsamples_to_the_aligned_size_then_crops():
    # 5 x 5 image, stride 4: the 2 x 2 map is upsampled to 8 x 8 (x4 per cell), then cropped to 5 x 5.
    # bilinear, align_corners=False, x4: pixel i samples cell (i + 0.5) / 4 - 0.5 -> 1, 1, 0.875, 0.625, 0.375
    img = torch.zeros(1, 3, 5, 5)
    axis = torch.tensor([1.0, 1.0, 0.875, 0.625, 0.375])
    out = aggregate_multiscale(_one_hot_top_left, img, scales=(1.0, ), flip=False, output_stride=4)
    assert out.shape == (1, 5, 5)
    assert torch.allclose(out[0], axis[:, None] * axis[None, :])
    # a direct 2 -> 5 resize (x2.5) samples (i + 0.5) / 2.5 - 0.5 instead -> 1, 0.9, 0.5, 0.1, 0
    direct = aggregate_multiscale(_one_hot_top_left, img, scales=(1.0, ), flip=False)
    direct_axis = torch.tensor([1.0, 0.9, 0.5, 0.1, 0.0])
    assert torch.allclose(direct[0], direct_axis[:, None] * direct_axis[None, :], atol=1e-6)
    # the flip pair is summed before upsampling: top-left + top-right cell -> constant along x
    flipped = aggregate_multiscale(_one_hot_top_left, img, scales=(1.0, ), flip=True, output_stride=4)
    assert torch.allclose(flipped[0], axis[:, None].expand(5, 5))


def test_aggregate_output_stride_with_scales_and_out_size():
    img = torch.zeros(1, 3, 6, 8)
    out = aggregate_multiscale(_const(1.0), img, output_stride=16)  # constants stay constant: 4 scales x 2
    assert out.shape == (2, 6, 8) and torch.allclose(out, torch.full_like(out, 8.0))
    # stride 1: the aligned size is out_size itself, i.e. the direct resize
    conv = torch.nn.Conv2d(3, 2, 3, stride=2, padding=1)
    x = torch.randn(1, 3, 9, 11)
    with torch.no_grad():
        a = aggregate_multiscale(conv, x, scales=(1.0, 0.5), out_size=(7, 5), output_stride=1)
        b = aggregate_multiscale(conv, x, scales=(1.0, 0.5), out_size=(7, 5))
    assert a.shape == (2, 7, 5) and torch.allclose(a, b)
    # out_size is what gets aligned (and cropped back): an 8 x 8 input (2 x 2 map) with out_size 7 x 5 and
    # stride 4 -> 8 x 8 (x4 per cell) -> 7 x 5
    c = aggregate_multiscale(_one_hot_top_left, torch.zeros(1, 3, 8, 8), scales=(1.0, ), flip=False,
                             out_size=(7, 5), output_stride=4)
    axis = torch.tensor([1.0, 1.0, 0.875, 0.625, 0.375, 0.125, 0.0])
    assert torch.allclose(c[0], axis[:, None] * axis[None, :5])
    with pytest.raises(ValueError, match='strided_up_size: output_stride'):
        aggregate_multiscale(_const(1.0), img, output_stride=0)


def test_aggregate_errors():
    with pytest.raises(ValueError, match='aggregate_multiscale expects one image of shape \\(1, 3, H, W\\)'):
        aggregate_multiscale(_const(1.0), torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match='aggregate_multiscale needs.*positive scales'):
        aggregate_multiscale(_const(1.0), torch.zeros(1, 3, 4, 4), scales=(1.0, 0.0))
    with pytest.raises(ValueError, match='aggregate_multiscale: score_fn'):
        aggregate_multiscale(lambda x: x[0], torch.zeros(1, 3, 4, 4))


def test_present_classes_hand_numbers():
    assert present_classes(torch.tensor([0.0, 1.0, 0.0, 1.0]), 4).tolist() == [1, 3]
    assert present_classes(torch.zeros(3), 3).tolist() == []
    with pytest.raises(ValueError, match=r'present_classes needs a label of shape \[4\]'):
        present_classes(torch.ones(3), 4)


def test_aggregate_picks_classes_before_upsampling_with_the_same_result():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 6, 3, stride=4, padding=1)
    img = torch.randn(1, 3, 21, 26)
    keys = torch.tensor([1, 4, 5])
    with torch.no_grad():
        for stride in (None, 4):
            full = aggregate_multiscale(conv, img, scales=(1.0, 0.5, 1.5), flip=True, output_stride=stride)
            picked = aggregate_multiscale(conv, img, scales=(1.0, 0.5, 1.5), flip=True, output_stride=stride,
                                          classes=keys)
            assert picked.shape == (3, 21, 26) and torch.equal(picked, full[keys])  # bit-identical
            assert aggregate_multiscale(conv, img, classes=torch.tensor([], dtype=torch.long)).shape == (0, 21, 26)
