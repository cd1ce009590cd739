"""Stops training at the first non-finite loss, naming the iteration and the loss."""
import math
from typing import Dict, List, Mapping, Optional, Sequence

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS

from csd_mm.utils.rank_errors import gather_failed_ranks

__all__ = ['FiniteLossHook', 'non_finite_losses', 'ranks_with_non_finite_loss']


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
    ``configs/_base_/default_runtime.py`` (``default_hooks.finite_loss``). Under distributed training every
    rank stops in the same iteration, whichever rank saw the non-finite loss (one all-reduce of a flag per rank
    and iteration, :func:`ranks_with_non_finite_loss`).
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        bad = non_finite_losses(outputs)
        where = f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
        # Under distributed training every rank must stop in the same iteration: a rank that raised alone would
        # leave the others blocked in their next gradient all-reduce (until the backend's timeout under NCCL,
        # unless the launcher kills them). One flag per rank is gathered for that.
        ranks = ranks_with_non_finite_loss(bool(bad))
        if bad:
            listed = ', '.join(f'{name}={value}' for name, value in bad.items())
            raise FloatingPointError(
                f'FiniteLossHook: training stopped at {where}: non-finite loss {listed}'
                f'{_on_ranks(ranks)}. No checkpoint of this iteration was written; check the learning rate, the '
                'loss weights and the input data (e.g. NaN / inf in images or labels).')
        if ranks:
            raise FloatingPointError(
                f'FiniteLossHook: training stopped at {where}: the loss of rank(s) {ranks} is not finite (see that '
                'rank\'s error). No checkpoint of this iteration was written.')


def ranks_with_non_finite_loss(local_bad: bool) -> List[int]:
    """The ranks whose loss of this iteration is not finite, the same list on every rank.

    Outside distributed training: ``[0]`` or ``[]`` from ``local_bad``, without communication.
    """
    return gather_failed_ranks(local_bad)


def _on_ranks(ranks: Sequence[int]) -> str:
    return f' (non-finite on rank(s) {list(ranks)})' if get_world_size() > 1 else ''
