"""Registered wrapper of CSD's dual consistency losses (Yang et al., BMVC 2023, Eq. 3-5).

The maths lives in :mod:`csd_mm.models.losses.masked_kl`; this module only holds the hyper-parameters,
applies the loss weights ``lambda_1`` / ``lambda_2`` and the optional warm-up, and returns mmengine-style
loss dicts.
"""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .masked_kl import _BG_MODES, _REDUCTIONS, background_consistency, foreground_consistency

__all__ = ['CSDConsistencyLoss']


@MODELS.register_module()
class CSDConsistencyLoss(nn.Module):
    """Foreground and background consistency of CSD (Yang et al., BMVC 2023, Eq. 3-5; docs/method.md section 4).

    ``loss_fg = lambda_fg * KL(softmax_c(M_s) || softmax_c(M_sm^fg))`` over the positions of ``M_fg`` and
    ``loss_bg = lambda_bg * KL(softmax([M', M_s]) || softmax([M', M_sm^bg]))`` over the positions of
    ``M_bg``, where ``M_s`` (the source view's score map) is the stop-gradient target distribution and
    ``M' = bg_score`` is a constant dummy background channel. The total CSD objective is
    ``L_cls + loss_fg + loss_bg``.

    Args:
        lambda_fg (float): ``lambda_1``, weight of the foreground term. Defaults to 0.01 (paper).
        lambda_bg (float): ``lambda_2``, weight of the background term. Defaults to 0.1 (paper).
        bg_score (float): Value of the dummy background channel ``M'``. Defaults to 0.0.
        bg_mode (str): ``'class'`` (``C + 1``-way distribution, default) or ``'saliency'`` (2-way
            ``[M', sum_c M[c]]``).
        fg_ratio (float): A score-map position counts when at least this fraction of its pixels lies in the
            (foreground or background) mask. Defaults to 1.0.
        reduction (str): ``'mean'`` over the masked positions of the batch (default) or ``'sum'`` (the
            paper's literal form).
        warmup_iters (int): Number of iterations (0-based ``cur_iter < warmup_iters``) during which both terms
            are zero. Defaults to 0 (on from the first iteration).
    """

    def __init__(self,
                 lambda_fg: float = 0.01,
                 lambda_bg: float = 0.1,
                 bg_score: float = 0.0,
                 bg_mode: str = 'class',
                 fg_ratio: float = 1.0,
                 reduction: str = 'mean',
                 warmup_iters: int = 0) -> None:
        super().__init__()
        if lambda_fg < 0 or lambda_bg < 0:
            raise ValueError(f'CSDConsistencyLoss: lambda_fg and lambda_bg must be >= 0, got {lambda_fg}, {lambda_bg}')
        if bg_mode not in _BG_MODES:
            raise ValueError(f'CSDConsistencyLoss: bg_mode must be one of {_BG_MODES}, got {bg_mode!r}')
        if reduction not in _REDUCTIONS:
            raise ValueError(f'CSDConsistencyLoss: reduction must be one of {_REDUCTIONS}, got {reduction!r}')
        if not 0.0 < fg_ratio <= 1.0:
            raise ValueError(f'CSDConsistencyLoss: fg_ratio must be in (0, 1], got {fg_ratio}')
        if int(warmup_iters) != warmup_iters or warmup_iters < 0:
            raise ValueError(f'CSDConsistencyLoss: warmup_iters must be a non-negative integer, got {warmup_iters}')
        self.lambda_fg = float(lambda_fg)
        self.lambda_bg = float(lambda_bg)
        self.bg_score = float(bg_score)
        self.bg_mode = bg_mode
        self.fg_ratio = float(fg_ratio)
        self.reduction = reduction
        self.warmup_iters = int(warmup_iters)

    def in_warmup(self, cur_iter: Optional[int]) -> bool:
        """Whether the consistency terms are still switched off at iteration ``cur_iter`` (0-based)."""
        if self.warmup_iters == 0:
            return False
        if cur_iter is None:
            raise ValueError(f'CSDConsistencyLoss: warmup_iters={self.warmup_iters} needs the current iteration; pass '
                             'cur_iter (e.g. runner.iter / message_hub "iter") to forward()')
        return cur_iter < self.warmup_iters

    def forward(self,
                src_scores: torch.Tensor,
                fg_scores: torch.Tensor,
                bg_scores: torch.Tensor,
                fg_mask: torch.Tensor,
                bg_mask: torch.Tensor,
                cur_iter: Optional[int] = None) -> Dict[str, torch.Tensor]:
        """Computes the weighted consistency terms.

        Args:
            src_scores (torch.Tensor): ``[N, C, h, w]`` score map of the source views ``x_s`` (detached
                inside; computing it under ``torch.no_grad`` is fine).
            fg_scores (torch.Tensor): ``[N, C, h, w]`` score map of the pasted views ``x_sm^fg``.
            bg_scores (torch.Tensor): ``[N, C, h, w]`` score map of the pasted views ``x_sm^bg``.
            fg_mask (torch.Tensor): ``[N, H, W]`` hard 0/1 (or bool) foreground mask ``M_fg`` at image
                resolution; downsampled here with ``fg_ratio``.
            bg_mask (torch.Tensor): ``[N, H, W]`` hard background mask ``M_bg`` at image resolution.
            cur_iter (int, optional): Current 0-based iteration, needed only when ``warmup_iters > 0``.

        Returns:
            dict[str, torch.Tensor]: ``loss_fg`` and ``loss_bg`` (scalars; zeros attached to the pasted
            views' graphs during warm-up).
        """
        if self.in_warmup(cur_iter):
            return dict(loss_fg=fg_scores.sum() * 0.0, loss_bg=bg_scores.sum() * 0.0)
        loss_fg = foreground_consistency(src_scores, fg_scores, fg_mask, self.fg_ratio, self.reduction)
        loss_bg = background_consistency(src_scores, bg_scores, bg_mask, self.bg_score, self.bg_mode,
                                         self.fg_ratio, self.reduction)
        return dict(loss_fg=self.lambda_fg * loss_fg, loss_bg=self.lambda_bg * loss_bg)

    def extra_repr(self) -> str:
        return (f'lambda_fg={self.lambda_fg}, lambda_bg={self.lambda_bg}, bg_score={self.bg_score}, '
                f'bg_mode={self.bg_mode!r}, fg_ratio={self.fg_ratio}, reduction={self.reduction!r}, '
                f'warmup_iters={self.warmup_iters}')
