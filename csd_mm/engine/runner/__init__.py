from .iter_based_train_loop import NoPauseIterBasedTrainLoop, restarts_worker_processes

__all__ = ['NoPauseIterBasedTrainLoop', 'restarts_worker_processes']
