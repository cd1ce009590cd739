from . import transforms  # noqa: F401
from .coco import COCO_CLASSES, COCO_METAINFO
from .coco_converter import convert_coco
from .cooccurrence import (CORSampler, cooccurrence_counts, cooccurrence_probs,
                           target_class_distribution)
from .csd_dataset import CSDDataset
from .domain import DomainSplit, class_counts, domain_split, split_domains
from .image_level_dataset import ImageLevelDataset
from .labels import (VOC_CLASSES, LabelFileError, labels_for_split, labels_from_masks, labels_from_xml,
                     load_cls_labels, read_split, save_cls_labels)
from .source_bank import build_source_bank, load_source_bank
from .toy import TOY_CLASSES, make_toy_voc
from .toy_coco import make_toy_coco

__all__ = [
    'CORSampler', 'cooccurrence_counts', 'cooccurrence_probs', 'target_class_distribution', 'DomainSplit',
    'class_counts', 'domain_split', 'split_domains', 'ImageLevelDataset', 'VOC_CLASSES', 'LabelFileError',
    'labels_for_split', 'labels_from_masks', 'labels_from_xml', 'load_cls_labels', 'read_split',
    'save_cls_labels', 'TOY_CLASSES', 'make_toy_voc', 'COCO_CLASSES', 'COCO_METAINFO', 'convert_coco',
    'make_toy_coco', 'CSDDataset', 'build_source_bank', 'load_source_bank'
]
