"""MCTformer's Vision Transformer: a DeiT with one class token per class and exposed attention maps.

MCTformer (Xu et al., "Multi-class Token Transformer for Weakly Supervised Semantic Segmentation",
CVPR 2022) replaces the single class token of a ViT/DeiT by ``C`` class tokens, one per foreground class,
each with its own position embedding. Its localization maps are read from the attention weights of the
blocks (class-to-patch and patch-to-patch attention), so every block here computes
``softmax(Q K^T / sqrt(d))`` explicitly and returns it. The CSD paper (Yang et al., "Cross-domain Semantic
Decoupling for Weakly-Supervised Semantic Segmentation", BMVC 2023) uses MCTformer-V2 on DeiT-S/16 as one
of its two baselines.

The parameters keep the names of mmpretrain's ``VisionTransformer`` (``patch_embed.projection``,
``layers.N.ln1`` / ``attn.qkv`` / ``attn.proj`` / ``ln2`` / ``ffn.layers...``, final norm ``ln1``), so
mmpretrain checkpoints map one to one; official DeiT (timm layout) checkpoints are converted by
:mod:`csd_mm.models.backbones.mctformer_weights`.

MCTformer-V2's ``forward_features`` returns the last block's tokens WITHOUT the final LayerNorm (its DeiT
parent builds ``norm`` and loads it from the DeiT checkpoint, but MCTformer never applies it); ``final_norm=False``
reproduces that. The norm ``ln1`` is then still built, so checkpoints with ``ln1.*`` / DeiT's ``norm.*`` load
strictly either way, but it is frozen (``requires_grad=False``): it takes no part in the forward pass, and a
trainable parameter without gradient would stop DDP.
"""
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import PatchEmbed
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.utils import MultiheadAttention, build_norm_layer, resize_pos_embed, to_2tuple
from torch import Tensor

from mmseg.registry import MODELS

__all__ = ['MCTformerViT', 'MultiheadAttentionWithWeights', 'MCTformerEncoderLayer']


class MultiheadAttentionWithWeights(MultiheadAttention):
    """mmpretrain's ``MultiheadAttention`` that can also return its attention weights.

    The parameters (``qkv``, ``proj``) and the output path (projection, dropout, layer scale) are
    mmpretrain's. ``forward(x, need_weights=True)`` computes ``softmax(Q K^T / sqrt(d))`` explicitly and
    returns it (before attention dropout, as MCTformer keeps it); ``need_weights=False`` runs
    mmpretrain's own fused path and returns ``None`` for the weights.
    """

    def forward(self, x: Tensor, need_weights: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
        """Self-attention over the tokens.

        Args:
            x (Tensor): Tokens ``(B, T, D)``.
            need_weights (bool): Whether to compute and return the attention weights.

        Returns:
            tuple: The attention output ``(B, T, D)`` and the weights ``(B, heads, T, T)`` (rows sum to
            1) or ``None``.
        """
        if not need_weights:
            return super().forward(x), None
        B, T, _ = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = torch.softmax((q * self.head_dims**-0.5) @ k.transpose(-2, -1), dim=-1)
        attn = F.dropout(weights, p=self.attn_drop, training=self.training)
        out = (attn @ v).transpose(1, 2).reshape(B, T, self.embed_dims)
        out = self.out_drop(self.gamma1(self.proj_drop(self.proj(out))))
        if self.v_shortcut:
            out = v.squeeze(1) + out
        return out, weights


class MCTformerEncoderLayer(TransformerEncoderLayer):
    """mmpretrain's ViT encoder layer (pre-norm attention + FFN) whose attention returns its weights."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0., qkv_bias: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6), **kwargs):
        super().__init__(embed_dims=embed_dims, num_heads=num_heads,
                         feedforward_channels=feedforward_channels, drop_rate=drop_rate,
                         attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate, qkv_bias=qkv_bias,
                         norm_cfg=norm_cfg, **kwargs)
        # Same constructor arguments as mmpretrain's layer uses, so the parameter names are unchanged.
        self.attn = MultiheadAttentionWithWeights(
            embed_dims=embed_dims, num_heads=num_heads, attn_drop=attn_drop_rate, proj_drop=drop_rate,
            dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate), qkv_bias=qkv_bias,
            layer_scale_init_value=kwargs.get('layer_scale_init_value', 0.))

    def forward(self, x: Tensor, need_weights: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
        """Returns the updated tokens and the attention weights ``(B, heads, T, T)`` (or ``None``)."""
        y, weights = self.attn(self.ln1(x), need_weights=need_weights)
        x = x + y
        x = self.ffn(self.ln2(x), identity=x)
        return x, weights


@MODELS.register_module()
class MCTformerViT(BaseBackbone):
    """DeiT with ``num_classes`` class tokens (MCTformer, Xu et al. CVPR 2022).

    The input is split into ``patch_size`` patches (mmcv ``PatchEmbed``; inputs whose sides are not
    multiples of the patch size are zero-padded at the bottom/right, 'corner' mode), the ``C`` class
    tokens are prepended, each class token and each patch gets its own position embedding (the patch part
    is interpolated with mmpretrain's ``resize_pos_embed`` when the patch grid differs from the one of
    ``img_size``), and the tokens pass through ``num_layers`` pre-norm blocks and, with ``final_norm``, a
    final LayerNorm.

    Args:
        arch (str | dict): 'deit-tiny', 'deit-small' (embed 384, 12 layers, 6 heads) or 'deit-base', or a
            dict with ``embed_dims``, ``num_layers``, ``num_heads`` and optionally
            ``feedforward_channels`` (default ``4 * embed_dims``). Defaults to 'deit-small'.
        num_classes (int): Number of class tokens C (foreground classes). Defaults to 20.
        img_size (int | tuple): Training input size; fixes the stored position-embedding grid.
            Defaults to 224.
        patch_size (int): Patch size. Defaults to 16.
        in_channels (int): Input channels. Defaults to 3.
        drop_rate (float): Dropout after the position embedding and in the blocks. Defaults to 0.
        attn_drop_rate (float): Dropout on the attention weights. Defaults to 0.
        drop_path_rate (float): Stochastic depth rate (linearly increasing over the blocks). MCTformer
            trains DeiT-S with 0.1. Defaults to 0.1.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='LN', eps=1e-6)`` (DeiT).
        interpolate_mode (str): Position-embedding interpolation mode. Defaults to 'bicubic'.
        final_norm (bool): Whether the output tokens pass through the final LayerNorm ``ln1`` (DeiT /
            mmpretrain's ViT). MCTformer does not apply it (``forward_features`` of MCTformerV1 / V2 in its
            ``models.py`` returns the last block's tokens): set False to follow it. When False, ``ln1`` is
            kept (checkpoints still load) but frozen and unused. Defaults to True.
        pretrained (str, optional): LOCAL path of a DeiT checkpoint (official DeiT/timm layout or
            mmpretrain ``VisionTransformer`` layout), loaded by :meth:`init_weights` through
            :func:`csd_mm.models.backbones.mctformer_weights.load_deit_pretrained` (class token repeated C
            times, patch position embedding interpolated, classifier head dropped). Defaults to None.
        init_cfg (dict | list, optional): Initialisation config. Defaults to truncated-normal Linear
            layers (std 0.02, zero bias) and unit LayerNorms, as DeiT.
    """
    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['deit-t', 'deit-tiny'], dict(embed_dims=192, num_layers=12, num_heads=3)),
        **dict.fromkeys(['deit-s', 'deit-small'], dict(embed_dims=384, num_layers=12, num_heads=6)),
        **dict.fromkeys(['deit-b', 'deit-base'], dict(embed_dims=768, num_layers=12, num_heads=12)),
    }

    def __init__(self,
                 arch: Union[str, dict] = 'deit-small',
                 num_classes: int = 20,
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 qkv_bias: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 interpolate_mode: str = 'bicubic',
                 final_norm: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[dict, list]] = None):
        if init_cfg is None:
            init_cfg = [dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
                        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)]
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch.lower() not in self.arch_zoo:
                raise ValueError(f'MCTformerViT: unknown arch {arch!r}; choose one of {sorted(self.arch_zoo)} '
                                 'or pass a dict with embed_dims, num_layers, num_heads')
            settings = dict(self.arch_zoo[arch.lower()])
        elif isinstance(arch, dict):
            missing = {'embed_dims', 'num_layers', 'num_heads'} - set(arch)
            if missing:
                raise ValueError(f'MCTformerViT: custom arch dict lacks {sorted(missing)}')
            settings = dict(arch)
        else:
            raise TypeError(f'MCTformerViT: arch must be a str or dict, got {type(arch).__name__}')
        settings.setdefault('feedforward_channels', 4 * settings['embed_dims'])
        if settings['embed_dims'] % settings['num_heads']:
            raise ValueError(f"MCTformerViT: embed_dims {settings['embed_dims']} is not divisible by "
                             f"num_heads {settings['num_heads']}")
        if num_classes < 1:
            raise ValueError(f'MCTformerViT: num_classes must be >= 1, got {num_classes}')
        self.arch_settings = settings
        self.embed_dims = settings['embed_dims']
        self.num_layers = settings['num_layers']
        self.num_heads = settings['num_heads']
        self.num_classes = num_classes
        self.num_extra_tokens = num_classes
        self.img_size = to_2tuple(img_size)
        self.patch_size = patch_size
        self.interpolate_mode = interpolate_mode
        if not isinstance(final_norm, bool):
            raise TypeError(f'MCTformerViT: final_norm must be a bool, got {final_norm!r}')
        self.final_norm = final_norm
        self.pretrained = pretrained

        self.patch_embed = PatchEmbed(in_channels=in_channels, input_size=img_size,
                                      embed_dims=self.embed_dims, conv_type='Conv2d',
                                      kernel_size=patch_size, stride=patch_size, padding='corner')
        self.patch_resolution: Tuple[int, int] = tuple(self.patch_embed.init_out_size)
        num_patches = self.patch_resolution[0] * self.patch_resolution[1]

        self.cls_token = nn.Parameter(torch.zeros(1, num_classes, self.embed_dims))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_classes + num_patches, self.embed_dims))
        self.drop_after_pos = nn.Dropout(p=drop_rate)

        dpr = np.linspace(0, drop_path_rate, self.num_layers)
        self.layers = nn.ModuleList([
            MCTformerEncoderLayer(embed_dims=self.embed_dims, num_heads=self.num_heads,
                                  feedforward_channels=settings['feedforward_channels'],
                                  drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                                  drop_path_rate=float(dpr[i]), qkv_bias=qkv_bias, norm_cfg=norm_cfg)
            for i in range(self.num_layers)
        ])
        # Built even when unused (final_norm=False) so that checkpoints keep one layout; frozen then, since it
        # gets no gradient (MCTformer-V2 loads DeiT's ``norm`` the same way and never applies it).
        self.ln1 = build_norm_layer(norm_cfg, self.embed_dims)
        if not final_norm:
            self.ln1.requires_grad_(False)

    @property
    def norm(self) -> nn.Module:
        """The final LayerNorm (``ln1`` in mmpretrain's naming); applied only when ``final_norm`` is True."""
        return self.ln1

    def train(self, mode: bool = True) -> 'MCTformerViT':
        """Sets the training mode and returns ``self`` (mmpretrain's ``BaseBackbone.train`` returns None)."""
        super().train(mode)
        return self

    def init_weights(self) -> None:
        """DeiT initialisation, then the local DeiT checkpoint given as ``pretrained`` (if any)."""
        super().init_weights()
        trunc_normal_(self.pos_embed, std=.02)
        trunc_normal_(self.cls_token, std=.02)
        if self.pretrained:
            from .mctformer_weights import load_deit_pretrained
            load_deit_pretrained(self, self.pretrained)

    def forward(self, x: Tensor, need_weights: bool = True) -> Tuple[Tensor, Tensor, List[Tensor]]:
        """Runs the transformer.

        Args:
            x (Tensor): Images ``(N, 3, H, W)``; sides that are not multiples of ``patch_size`` are
                zero-padded at the bottom/right.
            need_weights (bool): Whether to compute the attention weights explicitly and return them.
                Without them the blocks use the fused attention kernel (faster in training).

        Returns:
            tuple: ``cls_tokens`` ``(N, C, D)`` and ``patch_tokens`` ``(N, D, h, w)`` of the last block (after
            the final norm when ``final_norm`` is True), and the attention weights of every block, a list of
            ``num_layers`` tensors ``(N, heads, C + h*w, C + h*w)`` (empty when ``need_weights`` is False).
        """
        B = x.shape[0]
        x, hw = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, hw, mode=self.interpolate_mode,
                                 num_extra_tokens=self.num_extra_tokens)
        x = self.drop_after_pos(x)
        attn_maps: List[Tensor] = []
        for layer in self.layers:
            x, weights = layer(x, need_weights=need_weights)
            if need_weights:
                attn_maps.append(weights)
        if self.final_norm:
            x = self.ln1(x)
        cls_tokens = x[:, :self.num_classes]
        patch_tokens = x[:, self.num_classes:].reshape(B, hw[0], hw[1], self.embed_dims).permute(0, 3, 1, 2)
        return cls_tokens, patch_tokens.contiguous(), attn_maps
