"""Stops training at the first non-finite loss, naming the iteration and the loss."""
import math
from typing import Dict, Mapping, Optional

from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS

__all__ = ['FiniteLossHook', 'non_finite_losses']


def non_finite_losses(log_vars: Optional[Mapping]) -> Dict[str, float]:
    """The entries of a train step's ``log_vars`` (``loss``, ``loss_cls``, ...) that are NaN or infinite.

    Args:
        log_vars (Mapping, optional): Name -> scalar (float or one-element tensor), as ``train_step`` returns.

    Returns:
        dict: Name -> value of every non-finite loss entry (names containing ``loss``), in the given order.
    """
    bad = {}
    for name, value in (log_vars or {}).items():
        if 'loss' not in name:
            continue
        number = float(value.detach().float().mean()) if hasattr(value, 'detach') else float(value)
        if not math.isfinite(number):
            bad[name] = number
    return bad


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raises ``FloatingPointError`` after the first training iteration whose loss is NaN or infinite.

    Without it a NaN loss trains on silently (every later weight is NaN) and the checkpoints and CAMs written
    afterwards are garbage. It runs before the checkpoint and logger hooks of that iteration (priority
    ``ABOVE_NORMAL``), so no checkpoint of the broken weights is written. Every csd_mm config has it through
    ``configs/_base_/default_runtime.py`` (``default_hooks.finite_loss``).
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        bad = non_finite_losses(outputs)
        if bad:
            listed = ', '.join(f'{name}={value}' for name, value in bad.items())
            raise FloatingPointError(
                f'FiniteLossHook: training stopped at iteration {runner.iter + 1} (epoch {runner.epoch + 1}, batch '
                f'{batch_idx + 1}): non-finite loss {listed}. No checkpoint of this iteration was written; check '
                'the learning rate, the loss weights and the input data (e.g. NaN / inf in images or labels).')
