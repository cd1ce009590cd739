"""Tests of csd_mm/engine/hooks/num_classes_check_hook.py: class-count mismatches refused before training."""
import os.path as osp

import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.dataset import DefaultSampler
from mmengine.runner import Runner
from mmpretrain.models import ResNet

from csd_mm.datasets import ImageLevelDataset, make_toy_voc
from csd_mm.datasets.transforms import PackCAMInputs
from csd_mm.engine.hooks import NumClassesCheckHook
from csd_mm.engine.hooks.num_classes_check_hook import num_classes_mismatch
from csd_mm.models.classifiers import CAMClassifier
from csd_mm.models.heads import CAMHead


class _Head(torch.nn.Module):

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes


class _Classifier(torch.nn.Module):

    def __init__(self, num_classes):
        super().__init__()
        self.head = _Head(num_classes)


class _Segmentor(torch.nn.Module):

    def __init__(self, num_classes, aux_classes=None):
        super().__init__()
        self.decode_head = _Head(num_classes)
        self.auxiliary_head = None if aux_classes is None else _Head(aux_classes)


def test_num_classes_mismatch_by_hand():
    classes = ('background', 'a', 'b', 'c')
    assert num_classes_mismatch(_Classifier(3), classes) is None  # foreground classes only
    assert num_classes_mismatch(_Segmentor(4), classes) is None  # background included
    assert num_classes_mismatch(torch.nn.Linear(1, 1), classes) is None  # not checked
    assert num_classes_mismatch(_Classifier(20), classes) == (
        "model.head.num_classes is 20 but the dataset lists 4 classes with background (3 foreground classes "
        "expected): ['background', 'a', 'b', 'c']")
    assert num_classes_mismatch(_Segmentor(4, aux_classes=21), classes).startswith(
        'model.auxiliary_head.num_classes is 21 but the dataset lists 4 classes')
    # mmseg builds a cascade's decode heads and a list of auxiliary heads as nn.ModuleList: each is checked
    cascade = _Segmentor(4)
    cascade.decode_head = torch.nn.ModuleList([_Head(4), _Head(5)])
    assert num_classes_mismatch(cascade, classes).startswith('model.decode_head[1].num_classes is 5 but')
    cascade.decode_head[1].num_classes = 4
    cascade.auxiliary_head = torch.nn.ModuleList([_Head(4), _Head(21)])
    assert num_classes_mismatch(cascade, classes).startswith('model.auxiliary_head[1].num_classes is 21 but')
    cascade.auxiliary_head[1].num_classes = 4
    assert num_classes_mismatch(cascade, classes) is None


def test_runner_refuses_a_model_of_another_class_count_before_training(tmp_path):
    root = str(tmp_path / 'toy')
    classes = make_toy_voc(root, num_train=4, num_val=1, size=32, seed=5)['classes']
    dataset = dict(type=ImageLevelDataset, data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
                   label_file='cls_labels.npy', metainfo=dict(classes=tuple(classes)),
                   pipeline=[dict(type=LoadImageFromFile), dict(type=PackCAMInputs)])
    runner = Runner(
        model=dict(type=CAMClassifier, backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=4),
                   head=dict(type=CAMHead, in_channels=32, num_classes=20)),  # a VOC head on the 5-class toy
        work_dir=str(tmp_path / 'work'), experiment_name=osp.basename(str(tmp_path)),
        train_dataloader=dict(batch_size=2, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=False),
                              dataset=dataset),
        train_cfg=dict(by_epoch=False, max_iters=1),
        optim_wrapper=dict(optimizer=dict(type=torch.optim.SGD, lr=0.01)),
        default_hooks=dict(checkpoint=None, logger=None, num_classes_check=dict(type=NumClassesCheckHook)),
        default_scope=None)
    with pytest.raises(ValueError, match=r'NumClassesCheckHook \(train dataset ImageLevelDataset\): '
                                         r'model\.head\.num_classes is 20 but the dataset lists 6 classes with '
                                         r'background \(5 foreground classes expected\)'):
        runner.train()
    assert runner.iter == 0


@pytest.mark.parametrize('config', ['toy/cam_resnet18_1xb16_300it_toy_64x64.py',
                                    'toy/deeplabv3plus_r18_1xb8_1300it_toy_64x64.py',
                                    'csd/mctformer_csd_voc.py'])
def test_configs_have_the_bad_input_hooks(config):
    from mmengine.config import Config

    from csd_mm.engine.hooks import FiniteLossHook
    cfg = Config.fromfile(osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', config))
    assert cfg.default_hooks.finite_loss.type is FiniteLossHook
    assert cfg.default_hooks.num_classes_check.type is NumClassesCheckHook
