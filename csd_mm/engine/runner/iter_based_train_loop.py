"""mmengine's iteration-based training loop without its 2-second pause at every epoch end."""
from typing import Sequence

from mmengine.registry import LOOPS
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import DataLoader

__all__ = ['NoPauseIterBasedTrainLoop', 'restarts_worker_processes']


def restarts_worker_processes(dataloader: DataLoader) -> bool:
    """Whether a new pass over ``dataloader`` starts new worker processes.

    Only then can a restart deadlock, which is what mmengine's pause guards against: with ``num_workers=0`` the
    data are loaded in this process, and persistent workers are reused by the next ``iter()``.
    """
    return getattr(dataloader, 'num_workers', 0) > 0 and not getattr(dataloader, 'persistent_workers', False)


class _NoPauseInfiniteIterator(_InfiniteDataloaderIterator):
    """mmengine's infinite iterator (same batches, same ``set_epoch`` calls) minus the ``time.sleep(2)``."""

    def __next__(self) -> Sequence[dict]:
        if restarts_worker_processes(self._dataloader):
            return super().__next__()
        try:
            return next(self._iterator)
        except StopIteration:
            pass
        self._epoch += 1
        sampler = getattr(self._dataloader, 'sampler', None)
        if not hasattr(sampler, 'set_epoch'):
            sampler = getattr(getattr(self._dataloader, 'batch_sampler', None), 'sampler', None)
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(self._epoch)
        self._iterator = iter(self._dataloader)
        return next(self._iterator)


@LOOPS.register_module()
class NoPauseIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` that restarts an epoch-style sampler without mmengine's 2-second pause.

    mmengine 0.10's loop sleeps 2 s each time a ``DefaultSampler`` runs out ("prevent possible deadlock during
    epoch transition"). On the toy dataset (200 images, batch 16: an epoch every 13 iterations) that was 46 s of
    every 300-iteration CAM training, about a third of its time, and it showed up as ``data_time``. This loop
    gives the same batches in the same order (so results and resumed runs are unchanged) and keeps the pause
    only where it guards something: a loader whose restart spawns new worker processes
    (:func:`restarts_worker_processes`). ``InfiniteSampler`` avoids the restart too, but draws a different order
    than ``DefaultSampler`` and its per-epoch ``set_epoch`` reshuffle; the toy results in docs/results.md were
    measured with the latter.

    Args are those of :class:`mmengine.runner.IterBasedTrainLoop`.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Re-class the iterator mmengine made rather than make a second one: every ``iter(dataloader)`` draws a
        # base seed from torch's global generator, and one more draw would change the run's random numbers.
        self.dataloader_iterator.__class__ = _NoPauseInfiniteIterator
