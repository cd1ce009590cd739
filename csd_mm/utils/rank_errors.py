"""Errors of one rank of a distributed run that the other ranks learn of, instead of waiting for it.

A hook that writes files in a per-batch loop (``after_test_iter``, the CAM pass after training) must not raise
on one rank only: that rank would leave the loop, while the others go on into the next collective (mmengine's
``Evaluator.evaluate`` gathers the metric's results with ``collect_results``, the hooks all-reduce their counts)
and wait for it until the backend's timeout, or forever. :class:`DeferredRankError` keeps such an error, the
rank stops writing but stays in step, and every rank learns at the same collective which ranks failed: the
failed ones raise their own error, the others a ``RuntimeError`` naming them.
"""
import logging
from typing import Any, Callable, List, Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_dist_info
from mmengine.logging import print_log

__all__ = ['DeferredRankError', 'failed_ranks', 'failed_ranks_message', 'gather_failed_ranks']


def failed_ranks(flags: Sequence[int]) -> List[int]:
    """The ranks whose flag is set, from the all-reduced per-rank flags (index = rank)."""
    return [rank for rank, flag in enumerate(flags) if flag]


def failed_ranks_message(what: str, ranks: Sequence[int]) -> str:
    """The error of the ranks that did not fail: ``'<what> failed on rank(s) [1] (see their log)'``."""
    return f'{what} failed on rank(s) {list(ranks)} (see their log)'


def gather_failed_ranks(failed: bool) -> List[int]:
    """Which ranks failed (a collective: every rank calls it, at the same point of the run).

    Args:
        failed (bool): Whether this rank failed.

    Returns:
        list[int]: The failed ranks, the same list on every rank (``[0]`` or ``[]`` without a process group).
    """
    rank, world_size = get_dist_info()
    flags = torch.zeros(world_size, dtype=torch.int64)
    flags[rank] = int(bool(failed))
    all_reduce(flags)
    return failed_ranks(flags.tolist())


class DeferredRankError:
    """Keeps the first error of a rank's per-batch work until every rank meets at :meth:`raise_if_any_failed`.

    Without other ranks (no process group, or one rank) the error is raised at once: nobody waits for this
    rank, and the run fails where the error occurred.

    Args:
        what (str): What the work is, for the messages: ``'writing the CAM files to /data/cams'``.
        defer (bool, optional): Keep errors until :meth:`raise_if_any_failed`. Defaults to None: when the run
            has more than one rank.

    Examples:
        >>> errors = DeferredRankError(f'writing the CAM files to {out_dir}')
        >>> for batch in loader:            # every rank goes through its batches
        ...     errors.call(writer.submit, model.test_step(batch))   # skipped once an error is kept
        >>> errors.raise_if_any_failed()    # every rank; raises on every rank when any failed
    """

    def __init__(self, what: str, defer: Optional[bool] = None) -> None:
        self.what = what
        self.defer = get_dist_info()[1] > 1 if defer is None else bool(defer)
        self.error: Optional[BaseException] = None

    @property
    def failed(self) -> bool:
        """Whether this rank has an error kept."""
        return self.error is not None

    def keep(self, error: BaseException) -> None:
        """Keeps ``error`` unless one is kept already (the first tells the cause); raises it when not deferring.

        The error is logged at once, so the failed rank's log shows it while the other ranks still work.
        """
        if not self.defer:
            raise error
        if self.error is None:
            self.error = error
            print_log(f'{self.what} failed on rank {get_dist_info()[0]}: {type(error).__name__}: {error}. This '
                      'rank writes nothing more and raises it once the other ranks end their loop.',
                      logger='current', level=logging.ERROR)

    def call(self, fn: Callable, *args, **kwargs) -> Any:
        """``fn(*args, **kwargs)``, or nothing once an error is kept; an ``Exception`` it raises is kept.

        Returns:
            The result of ``fn``, or None when it was skipped or failed.
        """
        if self.error is not None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # kept for raise_if_any_failed (raised at once when not deferring)
            self.keep(e)
            return None

    def raise_if_any_failed(self) -> None:
        """Raises when any rank failed (a collective: every rank calls it once its loop is over).

        Raises:
            Exception: This rank's kept error, on a rank that failed.
            RuntimeError: On the other ranks, naming the failed ranks (:func:`failed_ranks_message`).
        """
        ranks = gather_failed_ranks(self.error is not None)
        error, self.error = self.error, None
        if error is not None:
            raise error
        if ranks:
            raise RuntimeError(failed_ranks_message(self.what, ranks))
