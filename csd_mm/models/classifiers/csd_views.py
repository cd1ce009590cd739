"""The CSD training step over the four views of a pair, shared by every CAM classifier.

Cross-domain Semantic Decoupling (Yang et al., BMVC 2023, Sec. 3.3): the classification loss applies to the
target image x_m; the score map of the clean source image x_s is the target distribution of the
foreground-pasted view x_sm^fg (Eq. 3) and of the background-pasted view x_sm^bg (Eq. 4-5).
"""
from typing import Dict, List, Sequence

import torch
from mmengine.logging import MessageHub
from torch import Tensor

__all__ = ['CSDViewsMixin', 'NUM_CSD_VIEWS']

#: Order of the views in a packed CSD sample (see PackCSDInputs).
CSD_VIEWS = ('target', 'source', 'pasted_fg', 'pasted_bg')
NUM_CSD_VIEWS = len(CSD_VIEWS)


def _stack_field(data_samples: Sequence, name: str, device) -> Tensor:
    try:
        return torch.stack([torch.as_tensor(s.get(name)) for s in data_samples]).to(device)
    except (TypeError, RuntimeError) as e:
        raise ValueError(f'every CSD data sample needs a {name!r} tensor of one shape ({e})') from e


def _current_iter():
    hub = MessageHub.get_current_instance()
    return hub.get_info('iter') if hub is not None else None


class CSDViewsMixin:
    """Adds the CSD loss over multi-view inputs to a classifier.

    The host class provides ``forward_maps(inputs) -> (list of logits, score map)``,
    ``classification_losses(logits_list, labels) -> dict``, ``_stack_labels(data_samples, n)`` and a ``head``
    with :meth:`~csd_mm.models.heads.CAMHead.consistency`, plus the attribute ``cls_on_pasted``.

    All four views go through ONE batched forward pass; the source view's score map is detached, so no
    gradient reaches it (the stop-gradient of the paper). Because the backbones here have no batch-coupled
    layers in training (IRN's ResNet keeps its batch norms frozen, ViTs use layer norm), this equals a separate
    ``no_grad`` forward of the source view while paying one pass instead of two.
    """

    cls_on_pasted: bool = False

    def csd_loss(self, inputs: Tensor, data_samples: Sequence) -> Dict[str, Tensor]:
        """Losses of a batch of CSD samples.

        Args:
            inputs (Tensor): ``(N, 4, 3, H, W)`` views in the order target, source, fg-pasted, bg-pasted.
            data_samples (Sequence): One per pair, with ``gt_label`` (target), ``src_label``, ``src_fg_mask``
                and ``src_bg_mask`` (``(H, W)``).

        Returns:
            dict[str, Tensor]: the classification loss(es) on x_m, ``loss_fg`` and ``loss_bg`` (and, with
            ``cls_on_pasted``, the classification loss on x_sm^fg with label y_m OR y_s).
        """
        n, v = inputs.shape[:2]
        if v != NUM_CSD_VIEWS:
            raise ValueError(f'CSD inputs need {NUM_CSD_VIEWS} views {CSD_VIEWS}, got {v}')
        views = inputs.transpose(0, 1).reshape(v * n, *inputs.shape[2:])  # view-major: [x_m; x_s; fg; bg]
        logits_list, score_map = self.forward_maps(views)
        labels = self._stack_labels(data_samples, n).to(inputs.device)
        losses = self.classification_losses([logits[:n] for logits in logits_list], labels)
        if self.cls_on_pasted:
            src_labels = _stack_field(data_samples, 'src_label', inputs.device).float()
            pasted = self.classification_losses([logits[2 * n:3 * n] for logits in logits_list],
                                                torch.maximum(labels, src_labels))
            losses.update({k + '_pasted': val for k, val in pasted.items()})
        src, fg, bg = score_map[n:2 * n].detach(), score_map[2 * n:3 * n], score_map[3 * n:]
        fg_mask = _stack_field(data_samples, 'src_fg_mask', inputs.device)
        bg_mask = _stack_field(data_samples, 'src_bg_mask', inputs.device)
        losses.update(self.head.consistency(src, fg, bg, fg_mask, bg_mask, cur_iter=_current_iter()))
        return losses
