"""Data preprocessor for batches that mix single images and multi-view CSD pairs."""
from typing import Union

import torch
from mmengine.model import ImgDataPreprocessor
from mmengine.utils import is_seq_of
from mmseg.registry import MODELS

__all__ = ['MultiViewDataPreprocessor']


@MODELS.register_module()
class MultiViewDataPreprocessor(ImgDataPreprocessor):
    """:class:`mmengine.model.ImgDataPreprocessor` that also accepts multi-view samples.

    Cross-domain Semantic Decoupling (Yang et al., BMVC 2023) pairs only the multi-label images of a batch: a
    paired sample packs its views as one ``(V, 3, H, W)`` tensor (target x_m, source x_s, fg-pasted x_sm^fg,
    bg-pasted x_sm^bg; see :class:`~csd_mm.datasets.transforms.PackCSDInputs`), an unpaired one as
    ``(1, 3, H, W)``. Every view is normalised exactly as a single image would be. The output keeps the batch
    of first views as ``inputs`` ``(N, 3, H, W)`` (what the baseline sees: the classification loss applies to
    all of them) and, when any sample is paired, adds ``pair_inputs`` ``(P, V - 1, 3, H, W)``: the other views
    of the ``P`` paired samples in batch order. No view is padded or invented for an unpaired sample, so it
    costs one forward pass as in the baseline. Single-view ``(3, H, W)`` samples give the usual
    ``(N, 3, H, W)``, so the same preprocessor serves baseline training and CAM inference.
    """

    def forward(self, data: dict, training: bool = False) -> Union[dict, list]:
        inputs = data['inputs']
        if not (is_seq_of(inputs, torch.Tensor) and inputs and inputs[0].dim() == 4):
            return super().forward(data, training)
        counts = [x.shape[0] for x in inputs]
        multi = sorted(set(c for c in counts if c > 1))
        if len(multi) > 1 or 0 in counts:
            raise ValueError(f'a batch may mix single views and pairs of one view count, got view counts {counts}')
        flat = dict(data, inputs=[view for x in inputs for view in x])
        out = super().forward(flat, training)
        batch = out['inputs']
        starts = torch.tensor([0] + counts[:-1]).cumsum(0)
        out['inputs'] = batch[starts]
        if multi:
            paired = [s + 1 for s, c in zip(starts.tolist(), counts) if c > 1]
            out['pair_inputs'] = torch.stack([batch[s:s + multi[0] - 1] for s in paired])
        return out
