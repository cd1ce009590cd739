"""mmpretrain's ``RandAugment`` whose geometric ops also move the label maps (registered in mmseg's TRANSFORMS).

RandAugment (Cubuk et al., NeurIPS 2020) as timm's 'rand-m9-mstd0.5-inc1', the policy DeiT (Touvron et al.,
ICML 2021) and MCTformer (Xu et al., CVPR 2022) train with: mmpretrain's ``policies='timm_increasing'`` (the
15 ops of timm's ``_RAND_INCREASING_TRANSFORMS``), ``num_policies=2``, ``magnitude_level=9``,
``magnitude_std=0.5``. In CSD (Yang et al., BMVC 2023) the source image's prior mask rides along as
``gt_seg_map``: the geometric ops here move it with the image, the photometric ones leave it alone.
"""
from typing import List, Union

from mmpretrain.datasets.transforms import RandAugment

from mmseg.registry import TRANSFORMS

from .mask_aware_functional import check_seg_pad_val
from .mask_aware_rotate import MaskAwareRotate
from .mask_aware_shear import MaskAwareShear
from .mask_aware_translate import MaskAwareTranslate

__all__ = ['MaskAwareRandAugment']


# mmpretrain op -> its mask-aware version (same arguments plus seg_pad_val)
_GEOMETRIC = {'Rotate': MaskAwareRotate, 'Shear': MaskAwareShear, 'Translate': MaskAwareTranslate}
# mmpretrain ops that change pixel values only (they read and write results['img'] alone)
_PHOTOMETRIC = ('AutoContrast', 'Equalize', 'Invert', 'Posterize', 'Solarize', 'SolarizeAdd', 'ColorTransform',
                'Contrast', 'Brightness', 'Sharpness', 'Cutout', 'GaussianBlur')


@TRANSFORMS.register_module()
class MaskAwareRandAugment(RandAugment):
    """RandAugment whose ``Rotate`` / ``Shear`` / ``Translate`` also move ``gt_seg_map`` and ``seg_fields``.

    mmpretrain's ``RandAugment`` builds the policies (preset name or list of dicts, ``hparams`` merged,
    magnitude settings) and draws ``num_policies`` of them per sample (with replacement, as timm); here every
    geometric policy is then rebuilt as its mask-aware subclass with the same arguments
    (:class:`~.MaskAwareRotate`, :class:`~.MaskAwareShear`, :class:`~.MaskAwareTranslate`), which draws the
    same random numbers and produces the same image as mmpretrain's op. So on an image without label maps this
    transform equals mmpretrain's ``RandAugment`` pixel for pixel for the same random state. Photometric ops
    (colour, contrast, solarize, ...) touch only ``img``. A policy type that is neither is refused, since it
    might move the image without its label maps.

    Required keys: ``img``. Optional keys: ``gt_seg_map``, ``seg_fields`` and the keys it names.

    Modified keys: ``img``, ``gt_seg_map`` and the ``seg_fields`` keys.

    Args:
        policies (str | list[dict]): mmpretrain's policies: a preset name ('timm_increasing' is timm's
            ``inc1`` set) or a list of policy dicts whose ``type`` is an mmpretrain op name.
        num_policies (int): Ops applied per sample (timm's ``n``, default 2).
        magnitude_level (int | float): Magnitude (timm's ``m``).
        magnitude_std (float | str): Std of the per-op magnitude noise (timm's ``mstd``). Defaults to 0.
        total_level (int | float): Magnitude of the largest op strength (timm: 10). Defaults to 10.
        hparams (dict): Arguments merged into every policy that takes them, e.g. ``pad_val`` (fill of the
            geometric ops, timm: the ImageNet mean) and ``interpolation``. Defaults to ``dict(pad_val=128)``.
        seg_pad_val (int): Label of the pixels that the geometric ops bring in from outside a label map.
            Defaults to 255 (ignore).

    Raises:
        ValueError: A policy type is neither geometric with a mask-aware version nor photometric.
    """

    def __init__(self,
                 policies: Union[str, List[dict]],
                 num_policies: int,
                 magnitude_level: Union[int, float],
                 magnitude_std: Union[int, float, str] = 0.,
                 total_level: Union[int, float] = 10,
                 hparams: dict = dict(pad_val=128),
                 seg_pad_val: int = 255) -> None:
        if isinstance(policies, list):
            for policy in policies:
                kind = policy.get('type') if isinstance(policy, dict) else None
                if kind not in _GEOMETRIC and kind not in _PHOTOMETRIC:
                    raise ValueError(
                        f'MaskAwareRandAugment: policy type {kind!r} is not supported: the geometric ops with a '
                        'mask-aware '
                        f'version are {sorted(_GEOMETRIC)} and the photometric ones {list(_PHOTOMETRIC)} (give '
                        "the type as mmpretrain's op name)")
        super().__init__(policies=policies, num_policies=num_policies, magnitude_level=magnitude_level,
                         magnitude_std=magnitude_std, total_level=total_level, hparams=hparams)
        self.seg_pad_val = check_seg_pad_val(seg_pad_val, 'MaskAwareRandAugment')
        for i, policy in enumerate(self.policies):  # the merged policy dicts mmpretrain built its ops from
            kind = policy['type']
            if kind in _GEOMETRIC:
                kwargs = {k: v for k, v in policy.items() if k != 'type'}
                self.transforms[i] = _GEOMETRIC[kind](seg_pad_val=self.seg_pad_val, **kwargs)
            elif kind not in _PHOTOMETRIC:
                raise ValueError(f'MaskAwareRandAugment: preset policy type {kind!r} has no mask-aware version and '
                                 'is not a photometric op')
