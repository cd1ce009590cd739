"""CAM classification head: a convolutional classifier that yields the score map F(x), GAP -> logits.

IRN (Ahn et al., CVPR 2019) classifies the global-average-pooled ResNet feature with a 1x1 convolution without
bias and computes CAMs by applying the same weights to every feature position. Since a 1x1 convolution is
linear per position, ``GAP(conv1x1(x)) == conv1x1(GAP(x))``: pooling the score map gives exactly IRN's logits,
and the score map before pooling is the map F(x) that the consistency losses of CSD (Yang et al., "Cross-domain
Semantic Decoupling for Weakly-Supervised Semantic Segmentation", BMVC 2023, Sec. 3) compare. MCTformer-V2
(Xu et al., CVPR 2022) uses the same structure with a 3x3 convolution with bias on the patch tokens
(``kernel_size=3, bias=True``).
"""
from typing import Dict, Optional, Union

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class CAMHead(BaseModule):
    """Convolutional classifier producing a class score map, pooled into logits.

    Args:
        in_channels (int): Channels of the input feature map.
        num_classes (int): Number of (foreground) classes C.
        kernel_size (int): Kernel size of the classifier conv (odd; padding ``kernel_size // 2`` keeps the
            spatial size). Defaults to 1 (IRN).
        bias (bool): Whether the classifier conv has a bias. Defaults to False (IRN).
        loss_weight (float): Weight of the multi-label soft-margin loss. Defaults to 1.0.
        consistency_loss (dict, optional): CSD's dual foreground / background KL consistency on the score map
            (:class:`~csd_mm.models.losses.CSDConsistencyLoss`, Eq. 3-5 of Yang et al., BMVC 2023); None for
            the baseline. Defaults to None.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None (PyTorch's default
            conv initialisation, as IRN and MCTformer).
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 kernel_size: int = 1,
                 bias: bool = False,
                 loss_weight: float = 1.0,
                 consistency_loss: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels), ('num_classes', num_classes),
                            ('kernel_size', kernel_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'CAMHead needs a positive integer {name}, got {value!r}')
        if kernel_size % 2 != 1:
            raise ValueError('CAMHead needs an odd kernel_size (the score map keeps the feature '
                             f'size), got {kernel_size}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.kernel_size = kernel_size
        self.loss_weight = float(loss_weight)
        self.classifier = nn.Conv2d(in_channels, num_classes, kernel_size, padding=kernel_size // 2,
                                    bias=bias)
        self.consistency_loss = MODELS.build(consistency_loss) if consistency_loss is not None else None

    def forward(self, x: Tensor) -> Tensor:
        """Computes the score map F(x).

        Args:
            x (Tensor): Features ``(N, in_channels, h, w)``.

        Returns:
            Tensor: Score map ``(N, num_classes, h, w)`` (before pooling, no ReLU).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'CAMHead expects features (N, {self.in_channels}, h, w), got '
                             f'{tuple(x.shape)}')
        return self.classifier(x)

    @staticmethod
    def pool(score_map: Tensor) -> Tensor:
        """Global average pooling of the score map into logits.

        Args:
            score_map (Tensor): ``(N, C, h, w)``.

        Returns:
            Tensor: Logits ``(N, C)``.
        """
        if score_map.dim() != 4:
            raise ValueError('CAMHead.pool expects a score map (N, C, h, w), got '
                             f'{tuple(score_map.shape)}')
        return score_map.mean(dim=(2, 3))

    def loss(self, logits: Tensor, gt_labels: Tensor) -> Tensor:
        """Weighted multi-label soft-margin loss (IRN, MCTformer).

        Args:
            logits (Tensor): ``(N, C)``.
            gt_labels (Tensor): Multi-hot labels ``(N, C)``.

        Returns:
            Tensor: ``loss_weight * multilabel_soft_margin_loss(logits, gt_labels)`` (a scalar, mean over N).
        """
        if logits.dim() != 2 or tuple(gt_labels.shape) != tuple(logits.shape):
            raise ValueError('CAMHead.loss needs logits (N, C) and labels of the same shape, got '
                             f'{tuple(logits.shape)} and {tuple(gt_labels.shape)}')
        return self.loss_weight * F.multilabel_soft_margin_loss(logits, gt_labels.to(logits.dtype))

    def consistency(self, src_scores: Tensor, fg_scores: Tensor, bg_scores: Tensor, fg_mask: Tensor,
                    bg_mask: Tensor, cur_iter: Optional[int] = None) -> Dict[str, Tensor]:
        """CSD's dual consistency between the source view's and the pasted views' score maps.

        Args:
            src_scores (Tensor): Score map of the clean source view ``(N, C, h, w)`` (the target distribution;
                detached by the loss).
            fg_scores (Tensor): Score map of the foreground-pasted view ``(N, C, h, w)``.
            bg_scores (Tensor): Score map of the background-pasted view ``(N, C, h, w)``.
            fg_mask (Tensor): Source foreground mask at image resolution ``(N, H, W)``.
            bg_mask (Tensor): Source background mask at image resolution ``(N, H, W)``.
            cur_iter (int, optional): Training iteration (for the warm-up).

        Returns:
            dict[str, Tensor]: ``loss_fg`` and ``loss_bg`` (already weighted by lambda_1 / lambda_2).
        """
        if self.consistency_loss is None:
            raise RuntimeError('CAMHead: the head has no consistency_loss configured; CSD views need '
                               'head.consistency_loss=dict(type=CSDConsistencyLoss, ...)')
        return self.consistency_loss(src_scores, fg_scores, bg_scores, fg_mask, bg_mask, cur_iter=cur_iter)
