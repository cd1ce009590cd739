"""BoundaryNet: the class-boundary branch of IRN (Ahn, Cho & Kwak, CVPR 2019) on an mmpretrain ResNet.

IRN (whose CAM -> pseudo-mask pipeline the ResNet baseline of Yang et al., "Cross-domain Semantic Decoupling for
Weakly-Supervised Semantic Segmentation", BMVC 2023, follows) predicts a class-boundary map ``B`` at 1/4 of the
image and derives the affinity of two positions from the strongest boundary between them
(:func:`~csd_mm.refine.functional.boundary_affinity.boundary_affinity`). Its edge branch takes five backbone levels of a
ResNet-50 with strides (2, 2, 2, 1) -- the stem after max pooling (64 channels, 1/4), stages 1-4 (256 / 512 /
1024 / 2048 channels at 1/4, 1/8, 1/16, 1/16) --, maps each with a 1x1 convolution (no bias) to 32 channels,
GroupNorm(4, 32), bilinear resizing to the finest level and ReLU, concatenates them and applies a 1x1
convolution (with bias) -> one logit per position; ``B = sigmoid(logit)``. IRN keeps the backbone frozen
(features detached, batch norms in eval mode) and trains only the branch; ``freeze_backbone`` does the same.

Training (IRN's ``train_irn.py``, semantic part only -- the displacement-field branch for instances is not
implemented): pairs within ``radius`` (IRN 10) of the confident label map get PSA's / IRN's labels
(:func:`~csd_mm.refine.functional.affinity.affinity_labels`) and the loss is
``L_bg+ / 4 + L_fg+ / 4 + L_neg / 2`` with ``-log a`` for positive pairs and ``-log(1 - a)`` for negative ones
(:func:`~csd_mm.refine.functional.affinity.affinity_loss`; IRN writes it as ``(L_pos + L_neg) / 2`` with
``L_pos = L_bg+ / 2 + L_fg+ / 2``).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor

from ..functional.affinity import confident_label_maps, pair_loss, resize_labels
from ..functional.boundary_affinity import boundary_affinity

__all__ = ['BoundaryNet']


class _BoundaryHead(nn.Module):
    """IRN's edge branch: per level 1x1 conv + GroupNorm + resize to the first level + ReLU; concat; 1x1 conv."""

    def __init__(self, in_channels: Sequence[int], mid_channels: Sequence[int], num_groups: int) -> None:
        super().__init__()
        if len(in_channels) != len(mid_channels) or not in_channels:
            raise ValueError(f'BoundaryNet: in_channels {tuple(in_channels)} and mid_channels {tuple(mid_channels)} '
                             f'must be non-empty and have the same length')
        if any(c % num_groups for c in mid_channels):
            raise ValueError(f'BoundaryNet: every mid_channels entry {tuple(mid_channels)} must be divisible by '
                             f'num_groups={num_groups}')
        self.reduce = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_mid, 1, bias=False), nn.GroupNorm(num_groups, c_mid))
            for c_in, c_mid in zip(in_channels, mid_channels))
        self.fuse = nn.Conv2d(sum(mid_channels), 1, 1, bias=True)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        if len(feats) != len(self.reduce):
            raise ValueError(f'BoundaryNet: the head expects {len(self.reduce)} feature levels, got {len(feats)}')
        size = feats[0].shape[-2:]
        xs = []
        for x, reduce in zip(feats, self.reduce):
            x = reduce(x)
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
            xs.append(F.relu(x))
        return self.fuse(torch.cat(xs, dim=1))


@MODELS.register_module()
class BoundaryNet(BaseModel):
    """IRN's class-boundary network: backbone levels -> boundary logits; trained with IRN's affinity loss.

    Modes of :meth:`forward`:

    * ``'loss'``: the data samples carry confident label maps ``gt_sem_seg`` (0 background, ``c + 1``
      foreground, 255 unsure; e.g. from :class:`~csd_mm.refine.datasets.AffinityLabelDataset`). They
      are downsampled to the boundary map size by the centre pixel of each cell (as IRN's PIL nearest), pairs
      within ``radius`` get their labels and the loss is ``dict(loss_aff=..., aff_bg_pos=..., aff_fg_pos=..., aff_neg=...)`` (the last three logged only).
    * ``'tensor'`` and ``'predict'``: the boundary map ``(N, 1, h, w)`` in [0, 1]; ``'predict'`` stores each
      sample's ``(1, h, w)`` as the data sample field ``boundary`` when samples are given.

    Args:
        backbone (dict): mmpretrain ResNet config; ``out_indices`` selects the stages, e.g. IRN's ResNet-50
            ``strides=(1, 2, 2, 1), out_indices=(0, 1, 2, 3)``.
        in_channels (Sequence[int]): Channels of the levels (the stem's first when ``with_stem``), e.g.
            (64, 256, 512, 1024, 2048).
        mid_channels (int | Sequence[int]): Per-level reduction. Defaults to 32 (IRN).
        num_groups (int): GroupNorm groups. Defaults to 4 (IRN).
        with_stem (bool): Use the stem output (after max pooling) as the first level (IRN). Defaults to True.
        freeze_backbone (bool): Backbone in eval mode and its features detached, only the head learns (IRN).
            Defaults to True.
        radius (int): Pair radius of the loss. Defaults to 10 (IRN's training).
        pretrained (str, optional): LOCAL backbone checkpoint (e.g. a torchvision ResNet-50 state dict, whose
            names mmpretrain's ResNet shares), loaded by a ``Pretrained`` init_cfg of the backbone; never
            downloaded. Defaults to None (the backbone's own init_cfg / initialisation).
        ignore_index (int): Unsure label. Defaults to 255.
        data_preprocessor (dict | nn.Module, optional): Defaults to mmseg's ``SegDataPreProcessor`` with
            ImageNet mean / std, ``bgr_to_rgb=True`` (images load as BGR), ``size_divisor=16`` (the coarsest
            level of IRN's backbone; padded label pixels are 255 and make no pairs) and ``seg_pad_val=255``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 in_channels: Sequence[int],
                 mid_channels: Union[int, Sequence[int]] = 32,
                 num_groups: int = 4,
                 with_stem: bool = True,
                 freeze_backbone: bool = True,
                 radius: int = 10,
                 pretrained: Optional[str] = None,
                 ignore_index: int = 255,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: OptConfigType = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type=SegDataPreProcessor, mean=[123.675, 116.28, 103.53],
                                     std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size_divisor=16,
                                     seg_pad_val=255)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if pretrained is not None:
            if backbone.get('init_cfg'):
                raise ValueError('BoundaryNet: give either pretrained or backbone.init_cfg, not both')
            backbone = dict(backbone, init_cfg=dict(type='Pretrained', checkpoint=pretrained))
        self.backbone = MODELS.build(backbone)
        in_channels = tuple(int(c) for c in in_channels)
        if isinstance(mid_channels, int):
            mid_channels = (mid_channels, ) * len(in_channels)
        self.head = _BoundaryHead(in_channels, tuple(int(c) for c in mid_channels), int(num_groups))
        self.with_stem = bool(with_stem)
        self.freeze_backbone = bool(freeze_backbone)
        self.radius = int(radius)
        self.ignore_index = int(ignore_index)
        if self.with_stem and not all(hasattr(self.backbone, a) for a in ('maxpool', 'res_layers')):
            raise ValueError('BoundaryNet: with_stem needs an mmpretrain ResNet-like backbone (maxpool, res_layers), '
                             f'got {type(self.backbone).__name__}')

    def train(self, mode: bool = True) -> 'BoundaryNet':
        """Sets the mode; a frozen backbone stays in eval mode (IRN)."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def _levels(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        if not self.with_stem:
            feats = self.backbone(inputs)
            return (feats, ) if isinstance(feats, Tensor) else tuple(feats)
        bb = self.backbone
        # the stages of mmpretrain's ResNet.forward, keeping the stem output as a level
        x = bb.stem(inputs) if getattr(bb, 'deep_stem', False) else bb.relu(bb.norm1(bb.conv1(inputs)))
        x = bb.maxpool(x)
        outs = [x]
        for i, name in enumerate(bb.res_layers):
            x = getattr(bb, name)(x)
            if i in bb.out_indices:
                outs.append(x)
        return tuple(outs)

    def boundary_logits(self, inputs: Tensor) -> Tensor:
        """Boundary logits ``(N, 1, h, w)`` (at the finest level) of normalised images ``(N, 3, H, W)``."""
        if self.freeze_backbone:
            with torch.no_grad():
                feats = self._levels(inputs)
            feats = [f.detach() for f in feats]
        else:
            feats = self._levels(inputs)
        return self.head(list(feats))

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        """IRN's boundary (inter-pixel affinity) loss of a batch (see the class docstring)."""
        labels = confident_label_maps(data_samples, 'BoundaryNet')
        bnd = torch.sigmoid(self.boundary_logits(inputs))[:, 0]
        return pair_loss(boundary_affinity(bnd, self.radius), resize_labels(labels, bnd.shape[-2:]), self.radius,
                         self.ignore_index)

    def forward(self, inputs: Tensor, data_samples: Optional[List] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode in ('tensor', 'predict'):
            bnd = torch.sigmoid(self.boundary_logits(inputs))
            if mode == 'predict' and data_samples is not None:
                for sample, b in zip(data_samples, bnd):
                    sample.set_field(b, 'boundary')
                return data_samples
            return bnd
        raise ValueError(f'BoundaryNet: unknown mode {mode!r}; use "loss", "predict" or "tensor"')
