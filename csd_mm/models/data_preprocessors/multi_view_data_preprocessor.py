"""Data preprocessor for samples that carry several views of one training pair (CSD)."""
from typing import Union

import torch
from mmengine.model import ImgDataPreprocessor
from mmengine.utils import is_seq_of
from mmseg.registry import MODELS

__all__ = ['MultiViewDataPreprocessor']


@MODELS.register_module()
class MultiViewDataPreprocessor(ImgDataPreprocessor):
    """:class:`mmengine.model.ImgDataPreprocessor` that also accepts multi-view samples.

    A CSD sample packs its views as one ``(V, 3, H, W)`` tensor (target, source, fg-pasted, bg-pasted; see
    :class:`~csd_mm.datasets.transforms.PackCSDInputs`). Every view is normalised exactly as a single image
    would be, and the batch comes out as ``(N, V, 3, H, W)``. Single-view ``(3, H, W)`` samples give the
    usual ``(N, 3, H, W)``, so the same preprocessor serves baseline training and CAM inference.
    """

    def forward(self, data: dict, training: bool = False) -> Union[dict, list]:
        inputs = data['inputs']
        if not (is_seq_of(inputs, torch.Tensor) and inputs and inputs[0].dim() == 4):
            return super().forward(data, training)
        num_views = inputs[0].shape[0]
        if any(x.shape[0] != num_views for x in inputs):
            raise ValueError(f'all samples of a batch need the same number of views, got '
                             f'{[x.shape[0] for x in inputs]}')
        flat = dict(data, inputs=[view for x in inputs for view in x])
        out = super().forward(flat, training)
        batch = out['inputs']
        out['inputs'] = batch.view(len(inputs), num_views, *batch.shape[1:])
        return out
