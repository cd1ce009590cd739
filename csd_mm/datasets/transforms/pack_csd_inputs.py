"""Packs a CSD training item (four views and the source masks of a pair, or one unpaired view) into model inputs."""
import numpy as np
import torch
from mmseg.registry import TRANSFORMS

from .pack_cam_inputs import PackCAMInputs

__all__ = ['PackCSDInputs']

#: The packed view order of a pair; BaseCAMClassifier (via MultiViewDataPreprocessor) reads them in this order.
VIEW_KEYS = ('img', 'src_img', 'pasted_fg_img', 'pasted_bg_img')


@TRANSFORMS.register_module()
class PackCSDInputs(PackCAMInputs):
    """Packs the views of Cross-domain Semantic Decoupling (Yang et al., BMVC 2023) into one sample.

    ``inputs`` is a ``uint8`` tensor ``(4, 3, H, W)``: target x_m, source x_s, fg-pasted x_sm^fg, bg-pasted
    x_sm^bg (the results of :class:`~csd_mm.datasets.transforms.CopyPaste`). The data sample is the target's
    (as :class:`PackCAMInputs`: ``gt_label`` and metainfo) plus ``src_label`` (float ``[C]``),
    ``src_fg_mask`` and ``src_bg_mask`` (bool ``(H, W)``) and the metainfo ``src_img_id``.

    An item that :class:`~csd_mm.datasets.CSDDataset` did not pair (``results['csd_paired']`` is False: a
    single-label image in the paper's reading) is packed as one view, ``(1, 3, H, W)``, with the data sample
    of :class:`PackCAMInputs` (no source fields): it costs one forward pass, as in the baseline.
    """

    def __init__(self, meta_keys=PackCAMInputs.DEFAULT_META_KEYS + ('src_img_id', )) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        if results.get('csd_paired', True) is False:
            packed = super().transform(results)
            packed['inputs'] = packed['inputs'][None]
            return packed
        missing = [k for k in VIEW_KEYS + ('src_fg_mask', 'src_bg_mask', 'src_label') if k not in results]
        if missing:
            raise KeyError(f'PackCSDInputs needs {missing} in the results of '
                           f'{results.get("img_path", "<unknown image>")} (run CopyPaste first)')
        shapes = {k: results[k].shape[:2] for k in VIEW_KEYS + ('src_fg_mask', 'src_bg_mask')}
        if len(set(shapes.values())) != 1:
            raise ValueError(f'CSD views of {results.get("img_path", "<unknown image>")} differ in size: '
                             f'{shapes}')
        sample = self._data_sample(results)
        # numpy stacks the views in one single-threaded copy; torch.stack of uint8 images runs on torch's
        # intra-op threads and was 100x slower (30 ms for 4 512x512 views) when the other core was busy
        packed = dict(inputs=torch.from_numpy(np.stack([self._image_chw(results[k]) for k in VIEW_KEYS])),
                      data_samples=sample)
        sample.src_label = torch.from_numpy(np.array(results['src_label'], np.float32).reshape(-1))
        sample.src_fg_mask = torch.from_numpy(np.asarray(results['src_fg_mask']) == 1)
        sample.src_bg_mask = torch.from_numpy(np.asarray(results['src_bg_mask']) == 1)
        return packed
