"""Tests of the pure CSD consistency maths (csd_mm/models/losses/masked_kl.py) on hand-computed numbers."""
import math

import pytest
import torch

import csd_mm  # noqa: F401  (compat first)
from csd_mm.models.losses.masked_kl import (add_background_channel, background_consistency,
                                            downsample_mask, foreground_consistency, masked_kl)

LN3 = math.log(3.0)


def _kl(p, q):
    """KL(p || q) of two explicit probability lists."""
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def _maps(*positions):
    """[1, C, 1, len(positions)] map whose position k holds the logits positions[k]."""
    return torch.tensor(positions, dtype=torch.float64).t()[None, :, None, :].contiguous()


# ---------------------------------------------------------------- masked_kl
def test_masked_kl_two_classes_hand_values():
    # position 0: p = softmax(0, 0) = (1/2, 1/2), q = softmax(0, ln 3) = (1/4, 3/4)
    #   KL = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3)
    # position 1: p = softmax(ln 3, 0) = (3/4, 1/4), q = (1/2, 1/2): KL = 3/4 ln(3/2) + 1/4 ln(1/2)
    # position 2: not in the mask (huge disagreement that must not count)
    target = _maps((0.0, 0.0), (LN3, 0.0), (50.0, -50.0))
    pred = _maps((0.0, LN3), (0.0, 0.0), (-50.0, 50.0))
    mask = torch.tensor([[[True, True, False]]])
    k0 = 0.5 * math.log(4.0 / 3.0)
    k1 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert masked_kl(target, pred, mask, 'sum').item() == pytest.approx(k0 + k1, rel=1e-9)
    assert masked_kl(target, pred, mask, 'mean').item() == pytest.approx((k0 + k1) / 2, rel=1e-9)
    only0 = torch.tensor([[[True, False, False]]])
    assert masked_kl(target, pred, only0).item() == pytest.approx(k0, rel=1e-9)
    # numeric 0/1 masks behave as bool masks
    assert masked_kl(target, pred, mask.to(torch.uint8)).item() == pytest.approx((k0 + k1) / 2, rel=1e-9)


def test_masked_kl_is_not_symmetric_direction_is_target_to_pred():
    target = _maps((0.0, 0.0))
    pred = _maps((0.0, LN3))
    mask = torch.ones(1, 1, 1, dtype=torch.bool)
    # KL(p || q) with p = (1/2, 1/2), q = (1/4, 3/4); the reverse KL(q || p) differs
    expected = _kl([0.5, 0.5], [0.25, 0.75])
    reverse = _kl([0.25, 0.75], [0.5, 0.5])
    assert expected != pytest.approx(reverse)
    assert masked_kl(target, pred, mask).item() == pytest.approx(expected, rel=1e-9)


def test_masked_kl_mean_is_over_masked_positions_of_the_whole_batch():
    # image 0: one masked position with KL k0; image 1: three masked positions with KL k1
    target = torch.zeros(2, 2, 1, 3, dtype=torch.float64)
    pred = torch.zeros(2, 2, 1, 3, dtype=torch.float64)
    pred[0, 1, 0, 0] = LN3                      # q = (1/4, 3/4) -> k0 = 1/2 ln(4/3)
    target[1, 0] = LN3                          # p = (3/4, 1/4), q = (1/2, 1/2) -> k1
    mask = torch.tensor([[[True, False, False]], [[True, True, True]]])
    k0 = 0.5 * math.log(4.0 / 3.0)
    k1 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert masked_kl(target, pred, mask).item() == pytest.approx((k0 + 3 * k1) / 4, rel=1e-9)
    assert masked_kl(target, pred, mask, 'sum').item() == pytest.approx(k0 + 3 * k1, rel=1e-9)


def test_masked_kl_mean_sum_relation_random():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(3, 4, 5, 6, generator=g)
    pred = torch.randn(3, 4, 5, 6, generator=g)
    mask = torch.rand(3, 5, 6, generator=g) > 0.6
    count = int(mask.sum())
    assert count > 0
    total = masked_kl(target, pred, mask, 'sum')
    mean = masked_kl(target, pred, mask, 'mean')
    assert total.item() == pytest.approx(mean.item() * count, rel=1e-5)
    assert mean.item() > 0


def test_masked_kl_stop_gradient_and_hand_gradient():
    target = _maps((0.0, 0.0), (1.0, 2.0)).requires_grad_(True)
    pred = _maps((0.0, LN3), (3.0, -1.0)).requires_grad_(True)
    mask = torch.tensor([[[True, False]]])
    masked_kl(target, pred, mask).backward()
    assert target.grad is None  # no gradient reaches the source view
    # d KL(p || softmax(z)) / dz = softmax(z) - p = (1/4, 3/4) - (1/2, 1/2) at the masked position
    assert pred.grad[0, :, 0, 0].tolist() == pytest.approx([-0.25, 0.25], abs=1e-12)
    assert pred.grad[0, :, 0, 1].tolist() == [0.0, 0.0]


def test_masked_kl_target_without_grad_under_no_grad():
    with torch.no_grad():
        target = torch.randn(2, 3, 2, 2)
    pred = torch.randn(2, 3, 2, 2, requires_grad=True)
    loss = masked_kl(target, pred, torch.ones(2, 2, 2, dtype=torch.bool))
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_masked_kl_empty_mask_is_zero_with_finite_gradient():
    target = torch.tensor([[[[1e4]], [[-1e4]]]], requires_grad=True)
    pred = torch.tensor([[[[-1e4]], [[1e4]]]], requires_grad=True)
    empty = torch.zeros(1, 1, 1, dtype=torch.bool)
    for reduction in ('mean', 'sum'):
        pred.grad = None
        loss = masked_kl(target, pred, empty, reduction)
        assert loss.item() == 0.0
        assert loss.requires_grad
        loss.backward()
        assert torch.isfinite(pred.grad).all() and (pred.grad == 0).all()


def test_masked_kl_saturated_logits_stay_finite():
    target = torch.tensor([[[[200.0]], [[-200.0]]]])
    pred = torch.tensor([[[[-200.0]], [[200.0]]]], requires_grad=True)
    loss = masked_kl(target, pred, torch.ones(1, 1, 1, dtype=torch.bool))
    loss.backward()
    # p = (1, ~0), q = (~0, 1): KL ~ log(1 / q_0) = 400
    assert loss.item() == pytest.approx(400.0, rel=1e-4)
    assert torch.isfinite(pred.grad).all()


def test_masked_kl_bad_inputs():
    t = torch.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError, match='same shape'):
        masked_kl(t, torch.zeros(1, 3, 2, 2), torch.ones(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match='mask must have shape'):
        masked_kl(t, t, torch.ones(1, 3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match='reduction'):
        masked_kl(t, t, torch.ones(1, 2, 2, dtype=torch.bool), 'none')


# ---------------------------------------------------------------- downsample_mask
def test_downsample_mask_fg_ratio_on_hand_made_mask():
    # 4x4 -> 2x2 blocks: top-left 4/4 covered, top-right 2/4, bottom-left 1/4, bottom-right 0/4
    mask = torch.tensor([[1, 1, 1, 0],
                         [1, 1, 1, 0],
                         [0, 0, 0, 0],
                         [1, 0, 0, 0]], dtype=torch.uint8)[None]
    assert downsample_mask(mask, (2, 2)).tolist() == [[[True, False], [False, False]]]
    assert downsample_mask(mask, (2, 2), 0.5).tolist() == [[[True, True], [False, False]]]
    assert downsample_mask(mask, (2, 2), 0.25).tolist() == [[[True, True], [True, False]]]
    assert downsample_mask(mask.bool(), (2, 2), 0.5).tolist() == [[[True, True], [False, False]]]
    assert downsample_mask(mask, (2, 2)).dtype == torch.bool


def test_downsample_mask_non_divisible_sizes_use_overlapping_bins():
    # 3x3 -> 2x2: bins are rows/cols {0, 1} and {1, 2}; each bin holds the centre pixel, 1/4 coverage
    mask = torch.zeros(1, 3, 3)
    mask[0, 1, 1] = 1
    assert downsample_mask(mask, (2, 2), 0.25).all()
    assert not downsample_mask(mask, (2, 2), 0.3).any()


def test_downsample_mask_ratio_tolerance_for_inexact_fractions():
    mask = torch.zeros(1, 3, 3)
    mask[0, :2] = 1  # 6/9 = 2/3 covered
    assert downsample_mask(mask, (1, 1), 2.0 / 3.0).item() is True
    assert downsample_mask(mask, (1, 1), 0.67).item() is False


def test_downsample_mask_same_size_and_batch():
    mask = torch.tensor([[[1, 0], [0, 1]], [[0, 0], [1, 1]]])
    assert downsample_mask(mask, (2, 2)).tolist() == mask.bool().tolist()


def test_downsample_mask_bad_inputs():
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        downsample_mask(torch.full((1, 2, 2), 255, dtype=torch.uint8), (1, 1))
    with pytest.raises(ValueError, match='fg_ratio'):
        downsample_mask(torch.ones(1, 2, 2), (1, 1), 0.0)
    with pytest.raises(ValueError, match=r'\[N, H, W\]'):
        downsample_mask(torch.ones(2, 2), (1, 1))


# ---------------------------------------------------------------- Eq. 3
def test_foreground_consistency_downsamples_image_mask():
    # score map 1x2 (2 positions), image 2x4: position 0 covers columns 0-1, position 1 columns 2-3
    src = _maps((0.0, 0.0), (0.0, 0.0)).float()
    pasted = _maps((0.0, LN3), (5.0, -5.0)).float().requires_grad_(True)
    fg = torch.tensor([[[1, 1, 1, 0], [1, 1, 0, 0]]], dtype=torch.uint8)  # position 1 only 1/4 covered
    loss = foreground_consistency(src, pasted, fg)
    assert loss.item() == pytest.approx(0.5 * math.log(4.0 / 3.0), rel=1e-5)
    k1 = _kl([0.5, 0.5], [1 / (1 + math.exp(-10)), 1 / (1 + math.exp(10))])
    loose = foreground_consistency(src, pasted, fg, fg_ratio=0.25, reduction='sum')
    assert loose.item() == pytest.approx(0.5 * math.log(4.0 / 3.0) + k1, rel=1e-5)
    loose.backward()
    assert pasted.grad.abs().sum() > 0


def test_foreground_consistency_shape_mismatch():
    with pytest.raises(ValueError, match='pasted_fg_scores'):
        foreground_consistency(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 3), torch.ones(1, 4, 4))


# ---------------------------------------------------------------- Eq. 4-5
def test_add_background_channel():
    scores = torch.tensor([[[[1.0]], [[2.0]]]])
    assert add_background_channel(scores, 0.5).flatten().tolist() == [0.5, 1.0, 2.0]
    assert add_background_channel(scores, -1.0, 'saliency').flatten().tolist() == [-1.0, 3.0]
    with pytest.raises(ValueError, match='mode'):
        add_background_channel(scores, 0.0, 'sum')


def test_background_consistency_class_mode_hand_value():
    # src (ln 3, 0) with M' = 0: p = softmax(0, ln 3, 0) = (1/5, 3/5, 1/5); pasted (0, 0): q = (1/3,)*3
    src = _maps((LN3, 0.0))
    pasted = _maps((0.0, 0.0))
    bg = torch.ones(1, 1, 1)
    expected = _kl([0.2, 0.6, 0.2], [1 / 3, 1 / 3, 1 / 3])
    assert background_consistency(src, pasted, bg).item() == pytest.approx(expected, rel=1e-9)
    # without the dummy channel the value would be KL((3/4, 1/4) || (1/2, 1/2)), a different number
    assert expected != pytest.approx(_kl([0.75, 0.25], [0.5, 0.5]))


def test_background_consistency_bg_score_and_saliency_mode_hand_values():
    # saliency, M' = ln 2: src sum = ln 2 -> p = (1/2, 1/2); pasted (ln 2, ln 4), sum ln 8 -> q = (2/10, 8/10)
    src = _maps((0.0, math.log(2.0)))
    pasted = _maps((math.log(2.0), math.log(4.0)))
    bg = torch.ones(1, 1, 1)
    sal = background_consistency(src, pasted, bg, bg_score=math.log(2.0), mode='saliency')
    assert sal.item() == pytest.approx(_kl([0.5, 0.5], [0.2, 0.8]), rel=1e-9)
    # class mode, same maps: p = softmax(ln 2, 0, ln 2) = (2/5, 1/5, 2/5); q = softmax(ln 2, ln 2, ln 4) =
    # (1/4, 1/4, 1/2)
    cls = background_consistency(src, pasted, bg, bg_score=math.log(2.0), mode='class')
    assert cls.item() == pytest.approx(_kl([0.4, 0.2, 0.4], [0.25, 0.25, 0.5]), rel=1e-9)


def test_background_consistency_stop_gradient_and_empty_mask():
    src = torch.randn(2, 3, 2, 2, requires_grad=True)
    pasted = torch.randn(2, 3, 2, 2, requires_grad=True)
    loss = background_consistency(src, pasted, torch.ones(2, 8, 8), mode='saliency')
    loss.backward()
    assert src.grad is None
    assert pasted.grad.abs().sum() > 0
    pasted.grad = None
    empty = background_consistency(src, pasted, torch.zeros(2, 8, 8))
    assert empty.item() == 0.0
    empty.backward()
    assert (pasted.grad == 0).all()


def test_masked_kl_half_precision_is_computed_in_float32():
    target = _maps((0.0, 0.0)).to(torch.bfloat16)
    pred = _maps((0.0, LN3)).to(torch.bfloat16)
    loss = masked_kl(target, pred, torch.ones(1, 1, 1, dtype=torch.bool))
    assert loss.dtype == torch.float32
    # ln 3 is rounded to bf16 (8 mantissa bits), hence the loose tolerance
    assert loss.item() == pytest.approx(0.5 * math.log(4.0 / 3.0), rel=1e-2)
