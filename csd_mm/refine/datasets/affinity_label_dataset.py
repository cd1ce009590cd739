"""Dataset of (image, confident label map) pairs for training PSA's affinity network or IRN's boundary network with
``tools/train.py``.

Two recipes make the confident labels from the CAMs (``confident_labels``):

* ``'psa'``: PSA (Ahn & Kwak, CVPR 2018) trains AffinityNet on the confident regions of two CRFs with the
  backgrounds ``(1 - max cam) ** alpha`` (:func:`~csd_mm.refine.functional.crf.confident_regions`); MCTformer
  (Xu et al., CVPR 2022) and the MCTformer pseudo masks of Yang et al., "Cross-domain Semantic Decoupling for
  Weakly-Supervised Semantic Segmentation" (BMVC 2023) do the same with their CAMs;
* ``'irn'``: IRN (Ahn, Cho & Kwak, CVPR 2019) trains its boundary network on CAMs thresholded with two constant
  background scores, each smoothed by a label CRF
  (:func:`~csd_mm.refine.functional.crf.irn_confident_regions`, IRN's ``step/cam_to_ir_label.py``).

The confident labels are computed lazily, the first time a sample is fetched (so the
dataloader workers share the CRF work), and cached as PNGs (written atomically) in ``label_dir``; later epochs and
reruns read the cache, as long as the folder's record (``settings.json``, :mod:`.label_record`) shows the same
recipe, numbers, CRF kernels, CAM folder and unchanged CAM files; labels made otherwise are refused, never silently
reused. A stock mmseg pipeline (``LoadImageFromFile``, ``LoadAnnotations``, random resize / crop /
flip, ``PackSegInputs``) then serves :class:`~csd_mm.refine.models.AffinityNet` or
:class:`~csd_mm.refine.models.BoundaryNet`.
"""
import copy
import os.path as osp
from typing import List, Optional

import mmengine
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.voc import PascalVOCDataset
from mmseg.registry import DATASETS

from ...datasets.labels import read_split
from ...utils.cam_io import CAM_SUFFIX, cam_path, check_cam_folder, load_cam
from ...utils.fileio import read_image, write_png
from ..functional.crf import confident_regions, irn_confident_regions
from .label_record import cam_stamps, claim_label_dir, confident_label_settings, effective_crf_cfg

__all__ = ['AffinityLabelDataset']


@DATASETS.register_module()
class AffinityLabelDataset(BaseSegDataset):
    """Images with confident label maps (0 background, ``c + 1`` foreground, 255 unsure) of PSA or IRN.

    Each ``data_info`` holds ``img_path``, ``img_id``, ``cam_path``, ``seg_map_path`` (the cached confident
    label PNG), ``reduce_zero_label=False``, ``seg_fields=[]`` and ``label_map=None``.

    Args:
        cam_dir (str): Folder of ``<id>.npz`` CAM files at the image size (used as given, not joined with
            ``data_root``).
        ann_file (str): Split file, one id per line (relative to ``data_root``; read with
            :func:`csd_mm.datasets.read_split`). Empty: every CAM file in ``cam_dir``.
        label_dir (str, optional): Cache folder of the confident labels. Defaults to the sibling
            ``<cam_dir>_conf_la<low_alpha>_ha<high_alpha>`` (PSA) or ``<cam_dir>_irn_conf_fg<conf_fg>_bg<conf_bg>``
            (IRN). Its ``settings.json`` records the recipe, its numbers, ``crf_cfg``, the CAM folder and each
            CAM file's size / modification time; cached labels made with other settings or from since-changed CAM
            files are refused with an error (see :func:`~csd_mm.refine.datasets.label_record.claim_label_dir`).
        confident_labels (str): The recipe: ``'psa'`` (default; PSA's two CRFs, ``low_alpha`` / ``high_alpha``)
            or ``'irn'`` (IRN's thresholds ``conf_fg`` / ``conf_bg`` with a label CRF).
        low_alpha (float): PSA: strong-background power. Defaults to 4 (PSA; MCTformer uses 1).
        high_alpha (float): PSA: weak-background power. Defaults to 32 (PSA; MCTformer uses 12).
        conf_fg (float): IRN: background score of the confident foreground. Defaults to 0.30 (IRN).
        conf_bg (float): IRN: background score of the confident background. Defaults to 0.05 (IRN).
        crf_cfg (dict, optional): Kernel parameters of the recipe's CRF:
            :func:`~csd_mm.refine.functional.crf.dense_crf` (PSA) or
            :func:`~csd_mm.refine.functional.crf.dense_crf_labels` (IRN; also ``gt_prob``). Their defaults
            are PSA's / IRN's.
        data_prefix (dict): ``img_path`` (default ``'JPEGImages'``).
        metainfo (dict, optional): Class names (background first); defaults to VOC's.
        **kwargs: Other arguments of mmseg's ``BaseSegDataset`` (``data_root``, ``pipeline``, ...).
    """
    METAINFO = copy.deepcopy(PascalVOCDataset.METAINFO)

    def __init__(self,
                 cam_dir: str,
                 ann_file: str = '',
                 label_dir: Optional[str] = None,
                 confident_labels: str = 'psa',
                 low_alpha: float = 4.0,
                 high_alpha: float = 32.0,
                 conf_fg: float = 0.30,
                 conf_bg: float = 0.05,
                 crf_cfg: Optional[dict] = None,
                 data_prefix: dict = dict(img_path='JPEGImages'),
                 **kwargs) -> None:
        self.cam_dir = osp.normpath(cam_dir)
        self.confident_labels = confident_labels
        if confident_labels == 'psa':
            if not low_alpha < high_alpha:
                raise ValueError(f'AffinityLabelDataset: low_alpha ({low_alpha}) must be smaller than high_alpha '
                                 f'({high_alpha})')
            self.label_numbers = dict(low_alpha=float(low_alpha), high_alpha=float(high_alpha))
            default_label_dir = f'{self.cam_dir}_conf_la{low_alpha:g}_ha{high_alpha:g}'
        elif confident_labels == 'irn':
            if not conf_bg < conf_fg:
                raise ValueError(f'AffinityLabelDataset: conf_bg ({conf_bg}) must be smaller than conf_fg '
                                 f'({conf_fg})')
            self.label_numbers = dict(conf_fg=float(conf_fg), conf_bg=float(conf_bg))
            default_label_dir = f'{self.cam_dir}_irn_conf_fg{conf_fg:g}_bg{conf_bg:g}'
        else:
            raise ValueError(f"AffinityLabelDataset: confident_labels must be 'psa' or 'irn', got "
                             f'{confident_labels!r}')
        self.label_dir = label_dir if label_dir is not None else default_label_dir
        self.crf_cfg = dict(crf_cfg or {})
        try:
            # a misspelt kernel name: refused here, not in the first CRF call
            effective_crf_cfg(self.crf_cfg, confident_labels)
        except ValueError as e:
            raise ValueError(f'AffinityLabelDataset: {e}') from None
        metainfo = kwargs.pop('metainfo', None)
        if metainfo is not None and 'classes' in metainfo and 'palette' not in metainfo and \
                list(metainfo['classes']) != list(self.METAINFO['classes']):
            # classes of another dataset: let mmseg generate a palette instead of slicing VOC's
            metainfo = dict(metainfo, palette=[])
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, metainfo=metainfo, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes=None) -> None:
        """No label mapping: the confident labels use this dataset's own class indices."""
        return None

    def load_data_list(self) -> List[dict]:
        """One entry per id of ``ann_file`` (or per CAM file); every CAM and image must exist."""
        if not osp.isdir(self.cam_dir):
            raise FileNotFoundError(f'AffinityLabelDataset: CAM folder {self.cam_dir} does not exist')
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(f'AffinityLabelDataset: split file {self.ann_file} does not exist')
            ids = read_split(self.ann_file)
        else:
            ids = sorted(f[:-len(CAM_SUFFIX)]
                         for f in mmengine.list_dir_or_file(self.cam_dir, list_dir=False, suffix=CAM_SUFFIX))
        img_dir = self.data_prefix.get('img_path', '')
        data_list = []
        missing = []
        for img_id in ids:
            info = dict(img_id=img_id, img_path=osp.join(img_dir, img_id + self.img_suffix),
                        cam_path=cam_path(self.cam_dir, img_id),
                        seg_map_path=osp.join(self.label_dir, img_id + '.png'), label_map=None,
                        reduce_zero_label=False, seg_fields=[])
            if not (osp.isfile(info['cam_path']) and osp.isfile(info['img_path'])):
                missing.append(img_id)
            data_list.append(info)
        if missing:
            raise FileNotFoundError(f'AffinityLabelDataset: {len(missing)} ids lack a CAM file in {self.cam_dir} or '
                                    f'an image in {img_dir}, e.g. {missing[:5]}')
        if not data_list:
            raise ValueError(f'AffinityLabelDataset: no samples (ann_file={self.ann_file!r}, cam_dir={self.cam_dir})')
        classes = list(self._metainfo.get('classes') or [])
        num_fg = len(classes) - 1 if classes and classes[0] == 'background' else None
        check_cam_folder(self.cam_dir, ids, num_fg)  # CAMs of another dataset: refused before any label is made
        # before any label is made (here, in the main process, not in the dataloader workers): cached labels of
        # another recipe / other numbers / CRF kernels / CAMs are refused, the settings of new ones recorded
        settings = confident_label_settings(self.cam_dir, self.confident_labels, self.label_numbers, self.crf_cfg)
        claim_label_dir(self.label_dir, settings, cam_stamps(self.cam_dir, ids))
        return data_list

    def confident_label(self, info: dict) -> str:
        """Makes sure the confident label PNG of one sample exists (computing it if needed); returns its path."""
        path = info['seg_map_path']
        if not osp.isfile(path):
            img = read_image(info['img_path'], channel_order='rgb')  # a corrupt file: an error naming it
            cam, keys = load_cam(info['cam_path'])
            if cam.shape[1:] != img.shape[:2]:
                raise ValueError(f'AffinityLabelDataset: CAM file {info["cam_path"]} has size {cam.shape[1:]} but '
                                 f'image {info["img_path"]} has {img.shape[:2]}')
            make_label = confident_regions if self.confident_labels == 'psa' else irn_confident_regions
            label = make_label(img, cam, keys, **self.label_numbers, **self.crf_cfg)
            write_png(path, label)
        return path

    def get_data_info(self, idx: int) -> dict:
        """The sample's ``data_info``, after making sure its confident label is cached."""
        info = super().get_data_info(idx)
        self.confident_label(info)
        return info
