"""Packs an image-level-labelled sample for the CAM classifiers (IRN, Ahn et al. CVPR 2019; MCTformer, Xu et
al. CVPR 2022; CSD, Yang et al. BMVC 2023)."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample

__all__ = ['PackCAMInputs']


@TRANSFORMS.register_module()
class PackCAMInputs(BaseTransform):
    """Packs ``img``, ``gt_label`` and (if loaded) ``gt_seg_map`` into ``inputs`` and a ``SegDataSample``.

    Like mmseg's ``PackSegInputs``, plus the image-level label. ``inputs`` is the ``uint8 (3, H, W)`` image
    (BGR, as mmcv loads it; normalisation is the data preprocessor's job). Images of another dtype (e.g.
    float after a photometric transform) are rounded and clipped to ``[0, 255]``.

    The data sample gets ``gt_label`` (float32 tensor ``[C]``), ``gt_sem_seg`` (``PixelData`` with an int64
    ``(1, H, W)`` tensor) when the results hold ``gt_seg_map``, and the metainfo keys in ``meta_keys`` that
    are present.

    Required keys: ``img``, ``gt_label``. Optional keys: ``gt_seg_map`` and the ``meta_keys``.

    Args:
        meta_keys (Sequence[str]): Keys copied into the data sample's metainfo. Defaults to
            ``DEFAULT_META_KEYS`` (subclasses such as ``PackCSDInputs`` extend it).
    """

    DEFAULT_META_KEYS = ('img_id', 'img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                         'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label', 'sample_idx')

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    @staticmethod
    def _image_chw(img: np.ndarray) -> np.ndarray:
        """The image as uint8 ``(C, H, W)``: a transposed view of ``img`` where it already is uint8."""
        if img.ndim == 2:
            img = img[..., None]
        if img.dtype != np.uint8:
            img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        return img.transpose(2, 0, 1)

    @classmethod
    def _image_tensor(cls, img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(cls._image_chw(img)))

    def transform(self, results: dict) -> dict:
        """Packs one sample.

        Args:
            results (dict): The pipeline's result dict.

        Returns:
            dict: ``inputs`` (uint8 tensor ``(3, H, W)``) and ``data_samples`` (``SegDataSample``).

        Raises:
            KeyError: ``img`` or ``gt_label`` is missing.
            ValueError: The mask's size differs from the image's (names ``seg_map_path`` and both sizes).
        """
        data_sample = self._data_sample(results)  # first: it names the image of a missing key
        return dict(inputs=self._image_tensor(results['img']), data_samples=data_sample)

    def _data_sample(self, results: dict) -> SegDataSample:
        """The checked ``SegDataSample`` of :meth:`transform` (labels, mask, metainfo), without the image."""
        for key in ('img', 'gt_label'):
            if key not in results:
                raise KeyError(f'PackCAMInputs needs {key!r} in the results of '
                               f'{results.get("img_path", "<unknown image>")}')
        img = results['img']
        data_sample = SegDataSample()
        if 'gt_seg_map' in results:
            seg = np.asarray(results['gt_seg_map'])
            if seg.ndim == 3 and seg.shape[-1] == 1:
                seg = seg[..., 0]
            if seg.ndim != 2 or seg.shape[:2] != img.shape[:2]:
                raise ValueError(f'mask {results.get("seg_map_path", "<unknown>")} has size {seg.shape} but '
                                 f'image {results.get("img_path", "<unknown>")} has size {img.shape[:2]}')
            data_sample.gt_sem_seg = PixelData(data=torch.from_numpy(seg[None].astype(np.int64)))
        data_sample.gt_label = torch.from_numpy(np.array(results['gt_label'], dtype=np.float32).reshape(-1))
        data_sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        return data_sample

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
