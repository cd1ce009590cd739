"""A tiny VOC-layout toy and a tiny CAM network for the real-Runner tests of the engine (hooks, loops)."""
from typing import Callable, Dict, Sequence, Tuple

import pytest
from mmcv.transforms import LoadImageFromFile
from mmpretrain.models import ResNet

from csd_mm.datasets import ImageLevelDataset, make_toy_voc
from csd_mm.datasets.transforms import PackCAMInputs
from csd_mm.models.classifiers import CAMClassifier
from csd_mm.models.heads import CAMHead


@pytest.fixture(scope='module')
def tiny_toy_voc(tmp_path_factory) -> Tuple[str, Sequence[str]]:
    """``(data_root, classes)`` of an 8-image, 32x32 toy dataset."""
    root = str(tmp_path_factory.mktemp('toy'))
    summary = make_toy_voc(root, num_train=8, num_val=2, size=32, seed=5)
    return root, summary['classes']


@pytest.fixture
def tiny_cam_parts() -> Callable[..., Tuple[Dict, Dict]]:
    """``parts(root, classes, loss_weight=1.0)`` -> the model and training dataset configs of a tiny CAM run."""

    def parts(root: str, classes: Sequence[str], loss_weight: float = 1.0) -> Tuple[Dict, Dict]:
        dataset = dict(type=ImageLevelDataset, data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
                       label_file='cls_labels.npy', metainfo=dict(classes=tuple(classes)),
                       pipeline=[dict(type=LoadImageFromFile), dict(type=PackCAMInputs)])
        model = dict(type=CAMClassifier,
                     backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=4, out_indices=(3, )),
                     head=dict(type=CAMHead, in_channels=32, num_classes=len(classes) - 1, loss_weight=loss_weight))
        return model, dataset

    return parts
