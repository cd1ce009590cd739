"""AffinityNet: PSA's pixel-affinity network (Ahn & Kwak, CVPR 2018) on an mmpretrain ResNet.

PSA (used by MCTformer, Xu et al., CVPR 2022, and so by the MCTformer pseudo masks of Yang et al., "Cross-domain
Semantic Decoupling for Weakly-Supervised Semantic Segmentation", BMVC 2023) predicts a feature embedding whose
pairwise L1 closeness is the semantic affinity of two positions. Its head takes three backbone levels, maps each
with a 1x1 convolution (no bias) + ELU to 64 / 128 / 256 channels, concatenates them and applies a 1x1
convolution (no bias) + ELU to 448 channels. PSA's backbone is ResNet-38 with all three levels at 1/8; here any
mmpretrain ResNet (configurable depth and widths, so tests use a tiny one) gives the levels, and the coarser
ones are bilinearly resized to the finest selected level before concatenation.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor

from ..functional.affinity import confident_label_maps, feature_affinity, pair_loss, resize_labels

__all__ = ['AffinityNet']


class _AffinityHead(nn.Module):
    """PSA's embedding head: per level 1x1 conv + ELU, resize to the first level, concat, 1x1 conv + ELU."""

    def __init__(self, in_channels: Sequence[int], mid_channels: Sequence[int], embed_channels: int) -> None:
        super().__init__()
        if len(in_channels) != len(mid_channels):
            raise ValueError(f'AffinityNet: in_channels {tuple(in_channels)} and mid_channels '
                             f'{tuple(mid_channels)} must have the same length')
        self.reduce = nn.ModuleList(
            nn.Conv2d(c_in, c_mid, 1, bias=False) for c_in, c_mid in zip(in_channels, mid_channels))
        self.fuse = nn.Conv2d(sum(mid_channels), embed_channels, 1, bias=False)
        for conv in self.reduce:
            nn.init.kaiming_normal_(conv.weight)
        nn.init.xavier_uniform_(self.fuse.weight, gain=4)  # PSA's initialisation of its last layer

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        if len(feats) != len(self.reduce):
            raise ValueError(f'AffinityNet: the head expects {len(self.reduce)} feature levels, got {len(feats)}')
        size = feats[0].shape[-2:]
        xs = []
        for x, conv in zip(feats, self.reduce):
            x = F.elu(conv(x))
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
            xs.append(x)
        return F.elu(self.fuse(torch.cat(xs, dim=1)))


@MODELS.register_module()
class AffinityNet(BaseModel):
    """PSA's affinity network: backbone -> embedding; trained with PSA's three-term affinity loss.

    Modes of :meth:`forward`:

    * ``'loss'``: the data samples carry confident label maps ``gt_sem_seg`` (0 background, ``c + 1``
      foreground, 255 unsure; e.g. from :class:`~csd_mm.refine.datasets.AffinityLabelDataset`).
      They are downsampled (nearest) to the embedding size, pairs within ``radius`` get PSA's labels and the
      loss is ``dict(loss_aff=..., aff_bg_pos=..., aff_fg_pos=..., aff_neg=...)`` (the last three logged).
    * ``'tensor'`` and ``'predict'``: the embedding ``(N, embed_channels, h, w)``; ``'predict'`` stores
      each sample's ``(embed_channels, h, w)`` as the data sample field ``aff_embedding`` when samples are given.

    Args:
        backbone (dict): mmpretrain ResNet config with ``out_indices`` selecting the levels, e.g. ResNet-50
            ``strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), out_indices=(1, 2, 3)`` (all at 1/8, as PSA).
        in_channels (Sequence[int]): Channels of the selected levels, e.g. (512, 1024, 2048).
        mid_channels (Sequence[int]): PSA's per-level reductions. Defaults to (64, 128, 256).
        embed_channels (int): Embedding channels. Defaults to 448 (PSA).
        radius (int): Pair radius of the loss. Defaults to 5 (PSA).
        ignore_index (int): Unsure label. Defaults to 255.
        data_preprocessor (dict | nn.Module, optional): Defaults to mmseg's ``SegDataPreProcessor`` with
            ImageNet mean / std, ``bgr_to_rgb=True`` (images load as BGR), ``size_divisor=8`` (mmseg's batch
            stacking needs a size or a divisor; padded label pixels are 255 and make no pairs) and
            ``seg_pad_val=255``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 in_channels: Sequence[int],
                 mid_channels: Sequence[int] = (64, 128, 256),
                 embed_channels: int = 448,
                 radius: int = 5,
                 ignore_index: int = 255,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: OptConfigType = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type=SegDataPreProcessor, mean=[123.675, 116.28, 103.53],
                                     std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size_divisor=8,
                                     seg_pad_val=255)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.head = _AffinityHead(tuple(in_channels), tuple(mid_channels), int(embed_channels))
        self.radius = int(radius)
        self.ignore_index = int(ignore_index)

    def extract_embedding(self, inputs: Tensor) -> Tensor:
        """The affinity embedding ``(N, embed_channels, h, w)`` of normalised images ``(N, 3, H, W)``."""
        feats = self.backbone(inputs)
        if isinstance(feats, Tensor):
            feats = (feats, )
        return self.head(list(feats))

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        """PSA's affinity loss of a batch (see the class docstring)."""
        labels = confident_label_maps(data_samples, 'AffinityNet')
        emb = self.extract_embedding(inputs)
        return pair_loss(feature_affinity(emb, self.radius), resize_labels(labels, emb.shape[-2:]), self.radius,
                         self.ignore_index)

    def forward(self, inputs: Tensor, data_samples: Optional[List] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode in ('tensor', 'predict'):
            emb = self.extract_embedding(inputs)
            if mode == 'predict' and data_samples is not None:
                for sample, e in zip(data_samples, emb):
                    sample.set_field(e, 'aff_embedding')
                return data_samples
            return emb
        raise ValueError(f'AffinityNet: unknown mode {mode!r}; use "loss", "predict" or "tensor"')
