"""The forward pass of CSD's source view x_s: deterministic, normalised like the views it is compared with.

Cross-domain Semantic Decoupling (Yang et al., BMVC 2023, Sec. 3.3) uses the score map of the clean source image,
M_s = F(x_s), as the *target distribution* of the pasted views (stop-gradient). A target should be a function of
the image and the current weights only. So the source pass here

* runs with every module in eval mode: no dropout, no drop-path (MCTformer-V2's DeiT trains with drop-path 0.1);
* normalises each batch-norm layer that trains with batch statistics (the toy networks; IRN's are frozen) by the
  *batch statistics of the main pass* (the batch holding x_m and the pasted views x_sm^fg, x_sm^bg that M_s is
  compared with), not by the source images' own batch, and updates no running statistics.

:func:`record_batch_norm_stats` records those statistics during the main pass; :func:`deterministic_pass` applies
them to the source pass. Both are free of CSD specifics and work on any ``nn.Module``.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, Tuple

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['record_batch_norm_stats', 'deterministic_pass']

BatchStats = Dict[nn.Module, Tuple[Tensor, Tensor]]


@contextmanager
def record_batch_norm_stats(model: nn.Module) -> Iterator[BatchStats]:
    """Records, for every batch-norm layer of ``model`` in training mode, the statistics of its next input.

    Yields a dict ``layer -> (mean, var)`` filled by the forward passes run inside the ``with`` block (the last
    one wins): the per-channel mean and the *biased* variance over every dimension but the channels, which is
    what a batch-norm layer in training mode normalises with (computed by batch norm's own statistics kernel,
    ``torch.batch_norm_update_stats``). Layers in eval mode (e.g. ``norm_eval``) are not
    recorded: they normalise with their running statistics in both passes.

    Note: ``SyncBatchNorm`` normalises with the statistics of the global batch; the recorded ones are this
    process's.
    """
    stats: BatchStats = {}

    def hook(layer: nn.Module, args) -> None:
        # The statistics kernel of batch norm itself, without normalising: on the CPU the mean is bit-identical
        # to the one the layer normalises with, and it costs about a quarter of ``x.mean`` + ``x.var`` over the
        # non-channel dims (docs/benchmarks.md, "Toy ResNet training step").
        stats[layer] = torch.batch_norm_update_stats(args[0].detach(), None, None, 0.0)

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()
               if isinstance(m, _BatchNorm) and m.training]
    try:
        yield stats
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def deterministic_pass(model: nn.Module, batch_stats: BatchStats) -> Iterator[None]:
    """Runs the ``with`` block with ``model`` in eval mode, its batch norms using ``batch_stats``.

    Every module's ``training`` flag is set to False (no dropout, no drop-path, no running-statistics update)
    and restored afterwards, flag by flag (so ``norm_eval`` / frozen stages stay as they were). Each layer in
    ``batch_stats`` normalises with the recorded ``(mean, var)`` instead of its running statistics, which are
    left untouched.

    Args:
        model (nn.Module): The network.
        batch_stats (dict): From :func:`record_batch_norm_stats` (may be empty).
    """
    modes = [(m, m.training) for m in model.modules()]
    swapped = []
    try:
        for m, _ in modes:
            m.training = False
        for layer, (mean, var) in batch_stats.items():
            swapped.append((layer, layer.running_mean, layer.running_var))
            layer.running_mean, layer.running_var = mean, var
        yield
    finally:
        for layer, running_mean, running_var in swapped:
            layer.running_mean, layer.running_var = running_mean, running_var
        for m, training in modes:
            m.training = training
