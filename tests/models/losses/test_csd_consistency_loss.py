"""Tests of the registered CSDConsistencyLoss wrapper (csd_mm/models/losses/csd_consistency_loss.py)."""
import math

import pytest
import torch

import csd_mm  # noqa: F401  (compat first, registers the loss)
from csd_mm.models.losses import CSDConsistencyLoss
from mmseg.registry import MODELS

LN3 = math.log(3.0)


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def _inputs():
    """One image, C = 2, a 1x1 score map and 2x2 image masks (both fully covered)."""
    src = torch.tensor([[[[LN3]], [[0.0]]]], requires_grad=True)      # p = (3/4, 1/4)
    fg = torch.tensor([[[[0.0]], [[0.0]]]], requires_grad=True)       # q = (1/2, 1/2)
    bg = torch.tensor([[[[0.0]], [[LN3]]]], requires_grad=True)       # with M' = 0: q = (1/5, 1/5, 3/5)
    ones = torch.ones(1, 2, 2, dtype=torch.uint8)
    return src, fg, bg, ones, ones.clone()


# hand values of the unweighted terms for _inputs()
L_FG = _kl([0.75, 0.25], [0.5, 0.5])
L_BG = _kl([0.2, 0.6, 0.2], [0.2, 0.2, 0.6])   # p = softmax(0, ln 3, 0), q = softmax(0, 0, ln 3)


def test_build_from_registry_with_paper_defaults():
    loss = MODELS.build(dict(type='CSDConsistencyLoss'))
    assert isinstance(loss, CSDConsistencyLoss)
    assert (loss.lambda_fg, loss.lambda_bg, loss.bg_score) == (0.01, 0.1, 0.0)
    assert (loss.bg_mode, loss.fg_ratio, loss.reduction, loss.warmup_iters) == ('class', 1.0, 'mean', 0)


def test_weighted_hand_values_and_stop_gradient():
    src, fg, bg, fg_mask, bg_mask = _inputs()
    out = CSDConsistencyLoss(lambda_fg=0.01, lambda_bg=0.1)(src, fg, bg, fg_mask, bg_mask)
    assert set(out) == {'loss_fg', 'loss_bg'}
    assert out['loss_fg'].item() == pytest.approx(0.01 * L_FG, rel=1e-6)
    assert out['loss_bg'].item() == pytest.approx(0.1 * L_BG, rel=1e-6)
    (out['loss_fg'] + out['loss_bg']).backward()
    assert src.grad is None
    # d/dz KL(p || softmax z) = softmax(z) - p, times lambda: fg: 0.01 * ((1/2, 1/2) - (3/4, 1/4))
    assert fg.grad.flatten().tolist() == pytest.approx([-0.0025, 0.0025], abs=1e-7)
    assert bg.grad.abs().sum() > 0


def test_saliency_mode_and_bg_score_are_passed_through():
    src, fg, bg, fg_mask, bg_mask = _inputs()
    out = CSDConsistencyLoss(lambda_bg=1.0, bg_score=LN3, bg_mode='saliency')(src, fg, bg, fg_mask, bg_mask)
    # [M', sum]: src (ln 3, ln 3) -> (1/2, 1/2); pasted bg (ln 3, ln 3) -> (1/2, 1/2): KL = 0
    assert out['loss_bg'].item() == pytest.approx(0.0, abs=1e-7)
    out = CSDConsistencyLoss(lambda_bg=1.0, bg_score=0.0, bg_mode='saliency')(src, fg, bg, fg_mask, bg_mask)
    assert out['loss_bg'].item() == pytest.approx(0.0, abs=1e-7)  # both sums are ln 3
    out = CSDConsistencyLoss(lambda_bg=1.0, bg_score=0.0, bg_mode='saliency')(
        src, fg, torch.zeros_like(bg), fg_mask, bg_mask)
    assert out['loss_bg'].item() == pytest.approx(_kl([0.25, 0.75], [0.5, 0.5]), rel=1e-6)


def test_fg_ratio_and_sum_reduction():
    src = torch.zeros(1, 2, 1, 2)
    fg = torch.zeros(1, 2, 1, 2)
    fg[0, 0] = LN3                                    # q = (3/4, 1/4) at both positions, p = (1/2, 1/2)
    mask = torch.tensor([[[1, 1, 1, 0], [1, 1, 0, 0]]])  # position 0 fully covered, position 1 1/4
    k = _kl([0.5, 0.5], [0.75, 0.25])
    strict = CSDConsistencyLoss(lambda_fg=1.0, reduction='sum')(src, fg, fg, mask, mask)
    loose = CSDConsistencyLoss(lambda_fg=1.0, reduction='sum', fg_ratio=0.25)(src, fg, fg, mask, mask)
    assert strict['loss_fg'].item() == pytest.approx(k, rel=1e-6)
    assert loose['loss_fg'].item() == pytest.approx(2 * k, rel=1e-6)


def test_warmup_gives_attached_zeros_then_switches_on():
    src, fg, bg, fg_mask, bg_mask = _inputs()
    loss = CSDConsistencyLoss(warmup_iters=2)
    for it in (0, 1):
        out = loss(src, fg, bg, fg_mask, bg_mask, cur_iter=it)
        assert out['loss_fg'].item() == 0.0 and out['loss_bg'].item() == 0.0
        assert out['loss_fg'].requires_grad and out['loss_bg'].requires_grad
    on = loss(src, fg, bg, fg_mask, bg_mask, cur_iter=2)
    assert on['loss_fg'].item() == pytest.approx(0.01 * L_FG, rel=1e-6)
    with pytest.raises(ValueError, match='cur_iter'):
        loss(src, fg, bg, fg_mask, bg_mask)


def test_empty_masks_give_zero_not_nan():
    src, fg, bg, _, _ = _inputs()
    empty = torch.zeros(1, 2, 2, dtype=torch.uint8)
    out = CSDConsistencyLoss()(src, fg, bg, empty, empty)
    assert out['loss_fg'].item() == 0.0 and out['loss_bg'].item() == 0.0
    (out['loss_fg'] + out['loss_bg']).backward()
    assert torch.isfinite(fg.grad).all() and torch.isfinite(bg.grad).all()


@pytest.mark.parametrize('kwargs', [dict(lambda_fg=-1.0), dict(bg_mode='sum'), dict(reduction='none'),
                                    dict(fg_ratio=0.0), dict(fg_ratio=1.5), dict(warmup_iters=-1),
                                    dict(warmup_iters=1.5)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='^CSDConsistencyLoss: '):
        CSDConsistencyLoss(**kwargs)
