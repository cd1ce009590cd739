"""Tests of timm's per-epoch cosine schedule as MCTformer steps it (csd_mm/engine/schedulers/).

MCTformer's defaults: lr 5e-4 * 64 / 512 = 6.25e-5, warmup_lr 1e-6, 5 warm-up epochs, min_lr 1e-5, 60 epochs;
timm steps it with step(epoch) after each epoch, so epoch e trains at the closed form at t = max(e - 1, 0).
"""
import math

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS

from csd_mm.engine.schedulers import TimmCosineLR, deit_epoch_lr, timm_cosine_lr

BASE = 6.25e-5
MCT = dict(t_initial=60, lr_min=1e-5, warmup_t=5, warmup_lr_init=1e-6)

# by hand: warm-up step (6.25e-5 - 1e-6) / 5 = 1.23e-5; cosine lr = 1e-5 + 2.625e-5 * (1 + cos(pi t / 60))
HAND = {
    0: 1e-6,  # the constructor's warmup_lr_init
    1: 1e-6,  # step(0): t = 0
    2: 1.33e-5,  # t = 1: 1e-6 + 1.23e-5
    3: 2.56e-5,
    4: 3.79e-5,
    5: 5.02e-5,  # t = 4, the last warm-up value
    6: 6.160555294e-5,  # t = 5: cos(pi / 12) = 0.9659258263 -> 1e-5 + 2.625e-5 * 1.9659258263
    21: 4.9375e-5,  # t = 20: cos(pi / 3) = 0.5
    31: 3.625e-5,  # t = 30: cos(pi / 2) = 0
    41: 2.3125e-5,  # t = 40: cos(2 pi / 3) = -0.5
    59: 1.014380025e-5,  # t = 58, the last training epoch: cos(29 pi / 30) = -0.9945218954
}


def _every_epoch():
    """An independent restatement of timm's formula for all 60 epochs."""
    out = []
    for epoch in range(60):
        t = max(epoch - 1, 0)
        if t < 5:
            out.append(1e-6 + t * (BASE - 1e-6) / 5)
        else:
            out.append(1e-5 + 0.5 * (BASE - 1e-5) * (1 + math.cos(math.pi * t / 60)))
    return out


def test_timm_closed_form_by_hand():
    assert timm_cosine_lr(0, BASE, **MCT) == pytest.approx(1e-6)
    assert timm_cosine_lr(2.5, BASE, **MCT) == pytest.approx(1e-6 + 2.5 * 1.23e-5)
    assert timm_cosine_lr(5, BASE, **MCT) == pytest.approx(6.160555294e-5, rel=1e-9)  # below BASE: no prefix
    assert timm_cosine_lr(30, BASE, **MCT) == pytest.approx(3.625e-5)
    assert timm_cosine_lr(60, BASE, **MCT) == timm_cosine_lr(75, BASE, **MCT) == 1e-5  # after the cycle
    assert timm_cosine_lr(0, 1.0, t_initial=10) == 1.0  # no warm-up: the cosine from its top
    assert timm_cosine_lr(5, 1.0, t_initial=10, lr_min=0.2) == pytest.approx(0.6)
    with pytest.raises(ValueError, match='timm_cosine_lr: need t >= 0'):
        timm_cosine_lr(-1, BASE, **MCT)


def test_deit_epoch_lr_every_epoch():
    for epoch, lr in HAND.items():
        assert deit_epoch_lr(epoch, BASE, **MCT) == pytest.approx(lr, rel=1e-9), epoch
    for epoch, lr in enumerate(_every_epoch()):
        assert deit_epoch_lr(epoch, BASE, **MCT) == pytest.approx(lr, rel=1e-12), epoch
    assert deit_epoch_lr(3, BASE, step_after_epoch=False, **MCT) == pytest.approx(3.79e-5)
    with pytest.raises(ValueError, match='epoch must be >= 0'):
        deit_epoch_lr(-1, BASE, **MCT)


def _run(scheduler_cfg, epochs=62, groups=(BASE, )):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in groups]
    optimizer = torch.optim.AdamW([dict(params=[p], lr=lr) for p, lr in zip(params, groups)], lr=groups[0])
    wrapper = OptimWrapper(optimizer)
    scheduler = PARAM_SCHEDULERS.build(dict(scheduler_cfg, optimizer=wrapper))
    seen = []
    for _ in range(epochs):  # an epoch of training, then what ParamSchedulerHook does with a by_epoch scheduler
        seen.append([g['lr'] for g in optimizer.param_groups])
        wrapper.step()
        scheduler.step()
    return seen


def test_registered_scheduler_gives_the_lr_of_every_epoch():
    seen = _run(dict(type='TimmCosineLR', **MCT), groups=(BASE, 2 * BASE))
    for epoch, lr in enumerate(_every_epoch()):
        assert seen[epoch][0] == pytest.approx(lr, rel=1e-12), epoch
    for epoch, lr in HAND.items():
        assert seen[epoch][0] == pytest.approx(lr, rel=1e-9), epoch
    # every group scales from its own initial lr, the warm-up start and lr_min are absolute (timm)
    assert seen[0][1] == 1e-6 and seen[2][1] == pytest.approx(1e-6 + (2 * BASE - 1e-6) / 5)
    assert seen[61][0] == 1e-5  # after the cycle: lr_min


def test_begin_offsets_the_schedule_and_bad_arguments_name_the_file():
    seen = _run(dict(type=TimmCosineLR, begin=2, **MCT), epochs=5)
    assert [s[0] for s in seen] == [BASE, BASE, 1e-6, 1e-6, pytest.approx(1.33e-5)]
    with pytest.raises(ValueError, match='TimmCosineLR: need t_initial > 0'):
        _run(dict(type=TimmCosineLR, t_initial=0))
