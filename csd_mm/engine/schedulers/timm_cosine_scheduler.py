"""Registered MMEngine lr scheduler reproducing the per-epoch lr of timm's ``CosineLRScheduler`` in DeiT /
MCTformer (Xu et al., CVPR 2022). The maths is :mod:`csd_mm.engine.schedulers.timm_cosine_functional`.

MMEngine's ``LinearLR`` + ``CosineAnnealingLR`` cannot give it: timm's cosine is counted from ``t = 0``
through the warm-up (its first post-warm-up value is below the base lr), and overlapping MMEngine schedulers
compose multiplicatively.
"""
from typing import List

from mmengine.optim.scheduler import _ParamScheduler
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.registry import PARAM_SCHEDULERS

from .timm_cosine_functional import deit_epoch_lr

__all__ = ['TimmCosineLR']


@PARAM_SCHEDULERS.register_module()
class TimmCosineLR(LRSchedulerMixin, _ParamScheduler):
    """timm's cosine schedule with linear warm-up, stepped once per epoch as DeiT / MCTformer step it.

    At step ``s`` (epochs since ``begin`` with ``by_epoch=True``) every parameter group gets
    :func:`~.timm_cosine_functional.deit_epoch_lr` of its initial lr: epoch 0 at ``warmup_lr_init``, epoch
    ``e >= 1`` at timm's closed form at ``t = e - 1`` (``step_after_epoch``). The value is closed form, never
    chained, so this scheduler must not overlap another lr scheduler.

    Args:
        optimizer (Optimizer | OptimWrapper): The optimizer.
        t_initial (int): timm's ``t_initial``: the number of epochs (MCTformer: 60), warm-up included.
        lr_min (float): timm's ``lr_min`` (MCTformer ``--min-lr``: 1e-5). Defaults to 0.
        warmup_t (int): Warm-up epochs (``--warmup-epochs``: 5). Defaults to 0.
        warmup_lr_init (float): Warm-up start lr (``--warmup-lr``: 1e-6). Defaults to 0.
        step_after_epoch (bool): Epoch ``e`` uses timm's ``t = max(e - 1, 0)``, as ``main.py`` calls
            ``lr_scheduler.step(epoch)`` after each epoch. False: ``t = e``. Defaults to True.
        begin (int): First step. Defaults to 0.
        end (int): Step after the last one. Defaults to INF.
        last_step (int): Last step index when resuming without state dict. Defaults to -1.
        by_epoch (bool): Steps are epochs (timm's ``t_in_epochs``). Defaults to True.
        verbose (bool): Print every update. Defaults to False.
    """

    def __init__(self, optimizer, t_initial: int, lr_min: float = 0.0, warmup_t: int = 0,
                 warmup_lr_init: float = 0.0, step_after_epoch: bool = True, begin: int = 0,
                 end: int = int(1e9), last_step: int = -1, by_epoch: bool = True, verbose: bool = False) -> None:
        if t_initial <= 0 or warmup_t < 0 or lr_min < 0 or warmup_lr_init < 0:
            raise ValueError('TimmCosineLR: need t_initial > 0 and warmup_t, lr_min, warmup_lr_init >= 0, got '
                             f't_initial={t_initial}, warmup_t={warmup_t}, lr_min={lr_min}, '
                             f'warmup_lr_init={warmup_lr_init}')
        self.t_initial = t_initial
        self.lr_min = lr_min
        self.warmup_t = warmup_t
        self.warmup_lr_init = warmup_lr_init
        self.step_after_epoch = step_after_epoch
        super().__init__(optimizer, begin=begin, end=end, last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    def _get_value(self) -> List[float]:
        """The closed-form lr of every parameter group at ``self.last_step``."""
        return [deit_epoch_lr(self.last_step, base, self.t_initial, lr_min=self.lr_min, warmup_t=self.warmup_t,
                              warmup_lr_init=self.warmup_lr_init, step_after_epoch=self.step_after_epoch)
                for base in self.base_values]
