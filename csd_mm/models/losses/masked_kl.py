"""Masked KL consistency between score maps: the maths of CSD's dual consistency (pure torch).

Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation", BMVC 2023,
Eq. (3)-(5), as read by docs/method.md section 4 (the published Eq. 4 is missing and Eq. 5 names the wrong
view; see ``docs/method.md``, "Deviations from the paper").

Notation: ``M_s = F(x_s)`` is the score map (before pooling, ``[N, C, h, w]``) of the source view; it is the
*target distribution* and never receives a gradient. ``M_sm^fg = F(x_sm^fg)`` and ``M_sm^bg = F(x_sm^bg)``
are the score maps of the two pasted views; they are the *predicted distributions*.

* Foreground (Eq. 3): inside ``M_fg``, ``KL(softmax_c(M_s[:, p]) || softmax_c(M_sm^fg[:, p]))``.
* Background (Eq. 4-5): a constant dummy background channel ``M' = bg_score`` is prepended to both maps
  (``C + 1`` channels; or the 2-way ``[M', sum_c M[c]]`` in saliency mode) and inside ``M_bg``
  ``KL(softmax([M', M_s[:, p]]) || softmax([M', M_sm^bg[:, p]]))``.

All functions are differentiable, vectorised and device-agnostic; they contain no framework code so that
each formula is tested on hand-computed numbers (``tests/models/losses/test_masked_kl.py``).
"""
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F

__all__ = ['downsample_mask', 'masked_kl', 'add_background_channel', 'foreground_consistency',
           'background_consistency']

_REDUCTIONS = ('mean', 'sum')
_BG_MODES = ('class', 'saliency')
# Tolerance of the ``>= fg_ratio`` test: area fractions such as 2/3 are not exact in floating point.
_RATIO_EPS = 1e-6


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f'masked_kl: reduction must be one of {_REDUCTIONS}, got {reduction!r}')


def downsample_mask(mask: torch.Tensor,
                    size: Union[Sequence[int], torch.Size],
                    fg_ratio: float = 1.0) -> torch.Tensor:
    """Downsamples an image-resolution region mask to the resolution of a score map.

    A score-map position counts as inside the region when at least ``fg_ratio`` of the image pixels it
    covers are inside the mask (docs/method.md section 4; ``fg_ratio = 1.0``, the default, keeps only positions
    that lie wholly inside the region, so mixed border positions never enter the KL).

    The covered-pixel fraction is the adaptive average pooling of the float mask (what ``F.interpolate``
    with ``mode='area'`` computes). When ``H`` is not a multiple of ``h``, output row ``i`` averages input
    rows ``floor(i * H / h)`` to ``ceil((i + 1) * H / h) - 1``, so neighbouring bins may share one border row
    and every input row is covered by at least one bin (likewise for columns). When ``size`` equals the
    mask's own size the mask is only thresholded.

    Args:
        mask (torch.Tensor): ``[N, H, W]`` region mask, bool or numeric with values in ``[0, 1]``
            (0/1 hard masks; a soft mask counts with its value).
        size (Sequence[int]): ``(h, w)`` of the score map.
        fg_ratio (float): Minimum fraction of covered pixels, in ``(0, 1]``. Defaults to 1.0.

    Returns:
        torch.Tensor: bool ``[N, h, w]`` mask on the input's device.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f'downsample_mask: mask must be a torch.Tensor, got {type(mask).__name__}')
    if mask.dim() != 3:
        raise ValueError(f'downsample_mask: mask must have shape [N, H, W], got {tuple(mask.shape)}')
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f'downsample_mask: size must be a positive (h, w), got {size}')
    if not 0.0 < float(fg_ratio) <= 1.0:
        raise ValueError(f'downsample_mask: fg_ratio must be in (0, 1], got {fg_ratio}')
    maskf = mask.detach().float()
    if maskf.numel():
        lo, hi = torch.aminmax(maskf)
        if lo < 0 or hi > 1:
            raise ValueError('downsample_mask: mask values must lie in [0, 1] (0/1 region masks), got range '
                             f'[{lo.item()}, {hi.item()}]; convert e.g. 0/255 masks first')
    if tuple(maskf.shape[-2:]) == size:
        frac = maskf
    else:
        frac = F.adaptive_avg_pool2d(maskf[:, None], size)[:, 0]
    return frac >= float(fg_ratio) - _RATIO_EPS


def masked_kl(target_logits: torch.Tensor,
              pred_logits: torch.Tensor,
              mask: torch.Tensor,
              reduction: str = 'mean') -> torch.Tensor:
    """Per-position ``KL(softmax_c(target) || softmax_c(pred))`` summed or averaged over a mask.

    ``target_logits`` is detached here (stop-gradient, docs/method.md section 4: the source view's scores are the
    target distribution, no gradient reaches them). The softmaxes are taken over the channel dimension in
    at least float32 (half-precision logits are upcast).

    Args:
        target_logits (torch.Tensor): ``[N, C, h, w]`` logits of the target distribution (source view).
        pred_logits (torch.Tensor): ``[N, C, h, w]`` logits of the predicted distribution (pasted view).
        mask (torch.Tensor): ``[N, h, w]`` positions that count; bool, or numeric (non-zero counts).
        reduction (str): ``'mean'`` (default): the sum divided by the number of masked positions of the
            whole batch; ``'sum'``: the paper's literal sum over positions.

    Returns:
        torch.Tensor: A scalar. With an empty mask it is 0, still attached to ``pred_logits``'s graph (its
        gradient is zero, never NaN).
    """
    _check_reduction(reduction)
    if target_logits.dim() != 4 or target_logits.shape != pred_logits.shape:
        raise ValueError('masked_kl: target_logits and pred_logits must both be [N, C, h, w] of the same '
                         f'shape, got {tuple(target_logits.shape)} and {tuple(pred_logits.shape)}')
    n, _, h, w = pred_logits.shape
    if tuple(mask.shape) != (n, h, w):
        raise ValueError(f'masked_kl: mask must have shape [N, h, w] = {(n, h, w)} to match the logits, got '
                         f'{tuple(mask.shape)}')
    mask = mask.to(device=pred_logits.device, dtype=torch.bool)
    # at least float32 (half-precision logits are upcast; float64 stays float64)
    dtype = torch.promote_types(torch.promote_types(target_logits.dtype, pred_logits.dtype), torch.float32)
    log_p = F.log_softmax(target_logits.detach().to(dtype), dim=1)
    log_q = F.log_softmax(pred_logits.to(dtype), dim=1)
    # sum_c p_c (log p_c - log q_c), computed from log-probabilities (stable for saturated softmaxes).
    kl = F.kl_div(log_q, log_p, reduction='none', log_target=True).sum(dim=1)  # [N, h, w]
    # where() (not a product) so unmasked positions can never inject inf/NaN into the sum or its gradient.
    total = torch.where(mask, kl, torch.zeros_like(kl)).sum()
    if reduction == 'sum':
        return total
    return total / mask.sum().clamp(min=1)


def add_background_channel(scores: torch.Tensor, bg_score: float = 0.0,
                           mode: str = 'class') -> torch.Tensor:
    """Prepends the constant dummy background channel ``M'`` of CSD Eq. (4)-(5).

    Args:
        scores (torch.Tensor): ``[N, C, h, w]`` class score map.
        bg_score (float): Value of the dummy channel ``M'``. Defaults to 0.0.
        mode (str): ``'class'`` -> ``[M', M[0], ..., M[C-1]]`` (``C + 1`` channels); ``'saliency'`` ->
            ``[M', sum_c M[c]]`` (2 channels, the paper's sigma as a saliency score).

    Returns:
        torch.Tensor: ``[N, C + 1, h, w]`` or ``[N, 2, h, w]``.
    """
    if mode not in _BG_MODES:
        raise ValueError(f'add_background_channel: bg mode must be one of {_BG_MODES}, got {mode!r}')
    if scores.dim() != 4:
        raise ValueError(f'add_background_channel: scores must be [N, C, h, w], got {tuple(scores.shape)}')
    if mode == 'saliency':
        scores = scores.sum(dim=1, keepdim=True)
    dummy = torch.full_like(scores[:, :1], float(bg_score))
    return torch.cat([dummy, scores], dim=1)


def _check_pair(src_scores: torch.Tensor, pasted_scores: torch.Tensor, name: str, owner: str) -> Tuple[int, int]:
    if src_scores.dim() != 4 or src_scores.shape != pasted_scores.shape:
        raise ValueError(f'{owner}: src_scores and {name} must both be [N, C, h, w] of the same shape, got '
                         f'{tuple(src_scores.shape)} and {tuple(pasted_scores.shape)}')
    return int(src_scores.shape[-2]), int(src_scores.shape[-1])


def foreground_consistency(src_scores: torch.Tensor,
                           pasted_fg_scores: torch.Tensor,
                           fg_mask: torch.Tensor,
                           fg_ratio: float = 1.0,
                           reduction: str = 'mean') -> torch.Tensor:
    """Foreground consistency ``L_fg`` (CSD Eq. 3).

    ``KL(softmax_c(M_s[:, p]) || softmax_c(M_sm^fg[:, p]))`` at the positions ``p`` of ``M_fg`` downsampled to
    the score map (:func:`downsample_mask`). ``M_s`` gets no gradient.

    Args:
        src_scores (torch.Tensor): ``[N, C, h, w]`` score map of the source view ``x_s`` (the target
            distribution).
        pasted_fg_scores (torch.Tensor): ``[N, C, h, w]`` score map of ``x_sm^fg``.
        fg_mask (torch.Tensor): ``[N, H, W]`` hard foreground mask ``M_fg`` (image resolution, or already
            ``h x w``).
        fg_ratio (float): See :func:`downsample_mask`. Defaults to 1.0.
        reduction (str): ``'mean'`` or ``'sum'``, see :func:`masked_kl`. Defaults to ``'mean'``.

    Returns:
        torch.Tensor: Scalar loss.
    """
    size = _check_pair(src_scores, pasted_fg_scores, 'pasted_fg_scores', 'foreground_consistency')
    mask = downsample_mask(fg_mask.to(pasted_fg_scores.device), size, fg_ratio)
    return masked_kl(src_scores, pasted_fg_scores, mask, reduction)


def background_consistency(src_scores: torch.Tensor,
                           pasted_bg_scores: torch.Tensor,
                           bg_mask: torch.Tensor,
                           bg_score: float = 0.0,
                           mode: str = 'class',
                           fg_ratio: float = 1.0,
                           reduction: str = 'mean') -> torch.Tensor:
    """Background consistency ``L_bg`` (CSD Eq. 4-5 as docs/method.md section 4 reads them).

    ``KL(softmax([M', M_s[:, p]]) || softmax([M', M_sm^bg[:, p]]))`` at the positions ``p`` of ``M_bg``
    downsampled to the score map, with the constant dummy channel ``M' = bg_score``
    (:func:`add_background_channel`). ``M_s`` gets no gradient.

    Args:
        src_scores (torch.Tensor): ``[N, C, h, w]`` score map of the source view ``x_s``.
        pasted_bg_scores (torch.Tensor): ``[N, C, h, w]`` score map of ``x_sm^bg``.
        bg_mask (torch.Tensor): ``[N, H, W]`` hard background mask ``M_bg``.
        bg_score (float): Dummy background score ``M'``. Defaults to 0.0.
        mode (str): ``'class'`` (``C + 1``-way) or ``'saliency'`` (2-way ``[M', sum_c M[c]]``).
        fg_ratio (float): Minimum covered fraction of a position, applied to ``bg_mask``
            (:func:`downsample_mask`). Defaults to 1.0.
        reduction (str): ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.

    Returns:
        torch.Tensor: Scalar loss.
    """
    size = _check_pair(src_scores, pasted_bg_scores, 'pasted_bg_scores', 'background_consistency')
    mask = downsample_mask(bg_mask.to(pasted_bg_scores.device), size, fg_ratio)
    return masked_kl(add_background_channel(src_scores, bg_score, mode),
                     add_background_channel(pasted_bg_scores, bg_score, mode), mask, reduction)
