"""timm's cosine learning-rate schedule as DeiT / MCTformer step it (pure functions).

DeiT (Touvron et al., ICML 2021) and MCTformer (Xu et al., CVPR 2022) build timm's ``CosineLRScheduler``
(cosine annealing of Loshchilov & Hutter, ICLR 2017, with a linear warm-up) through ``create_scheduler`` and
call ``lr_scheduler.step(epoch)`` once, AFTER training epoch ``epoch``, never per iteration. timm's closed
form at ``t`` (timm 0.4.12, ``t_mul = 1``, ``warmup_prefix = False``, one cycle):

* ``t < warmup_t``:          ``warmup_lr_init + t * (base_lr - warmup_lr_init) / warmup_t``
* ``warmup_t <= t < t_initial``: ``lr_min + (base_lr - lr_min) * (1 + cos(pi * t / t_initial)) / 2`` (``t``
  counted from 0, warm-up included, so the cosine starts below ``base_lr``)
* ``t >= t_initial``:        ``lr_min`` (after the cycle; timm's "cooldown")

The constructor sets the lr to ``warmup_lr_init``, so epoch 0 trains with it, and epoch ``e >= 1`` trains with
the value set by ``step(e - 1)``: the lr of epoch ``e`` is the closed form at ``t = max(e - 1, 0)``.
"""
import math

__all__ = ['timm_cosine_lr', 'deit_epoch_lr']


def timm_cosine_lr(t: float, base_lr: float, t_initial: int, lr_min: float = 0.0, warmup_t: int = 0,
                   warmup_lr_init: float = 0.0) -> float:
    """timm's ``CosineLRScheduler._get_lr(t)`` for one parameter group (``t_mul=1``, one cycle).

    Args:
        t (float): Scheduler time (epochs for DeiT / MCTformer), ``>= 0``.
        base_lr (float): The group's initial lr.
        t_initial (int): Length of the cosine cycle (timm's ``t_initial``; ``create_scheduler`` passes the
            number of epochs), warm-up included.
        lr_min (float): Final lr of the cosine and lr after the cycle. Defaults to 0.
        warmup_t (int): Warm-up length (timm's ``warmup_t``). Defaults to 0.
        warmup_lr_init (float): lr at ``t = 0`` of the warm-up. Defaults to 0.

    Returns:
        float: The learning rate.
    """
    if t < 0 or t_initial <= 0 or warmup_t < 0:
        raise ValueError(f'timm_cosine_lr: need t >= 0, t_initial > 0 and warmup_t >= 0, got t={t}, '
                         f't_initial={t_initial}, warmup_t={warmup_t}')
    if t < warmup_t:
        return warmup_lr_init + t * (base_lr - warmup_lr_init) / warmup_t
    if t >= t_initial:
        return lr_min
    return lr_min + 0.5 * (base_lr - lr_min) * (1 + math.cos(math.pi * t / t_initial))


def deit_epoch_lr(epoch: int, base_lr: float, t_initial: int, lr_min: float = 0.0, warmup_t: int = 0,
                  warmup_lr_init: float = 0.0, step_after_epoch: bool = True) -> float:
    """The lr that DeiT's / MCTformer's ``main.py`` trains epoch ``epoch`` with (0-based).

    Args:
        epoch (int): Training epoch, ``>= 0``.
        base_lr, t_initial, lr_min, warmup_t, warmup_lr_init: See :func:`timm_cosine_lr`.
        step_after_epoch (bool): True (DeiT / MCTformer): the scheduler is stepped with ``step(epoch)`` after
            each epoch, so epoch ``e`` uses ``t = max(e - 1, 0)`` (epochs 0 and 1 both at ``warmup_lr_init``
            when there is a warm-up). False: epoch ``e`` uses ``t = e``.

    Returns:
        float: The learning rate of that epoch.
    """
    if epoch < 0:
        raise ValueError(f'deit_epoch_lr: epoch must be >= 0, got {epoch}')
    t = max(epoch - 1, 0) if step_after_epoch else epoch
    return timm_cosine_lr(t, base_lr, t_initial, lr_min=lr_min, warmup_t=warmup_t, warmup_lr_init=warmup_lr_init)
