"""Tests of csd_mm/engine/hooks/segmentation_export_hook.py: the pure helpers on hand-made inputs, then the hook
in the test loop of a real mmengine Runner with a tiny mmseg EncoderDecoder on a generated toy dataset."""
import os
import os.path as osp

import numpy as np
import pytest
import torch

import csd_mm  # noqa: F401  (mmcv-lite fallbacks before mmseg.models; registers the hook)
from mmcv.transforms import LoadImageFromFile
from mmengine.config import ConfigDict
from mmengine.dataset import DefaultSampler
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
from mmseg.evaluation import IoUMetric
from mmseg.models import EncoderDecoder, FCNHead, ResNetV1c, SegDataPreProcessor
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample
from torch.nn import BatchNorm2d

from csd_mm.datasets import make_toy_voc
from csd_mm.engine.hooks import SegPredictionExportHook
from csd_mm.engine.hooks.segmentation_export_hook import (prediction_path, prediction_to_mask,
                                                          voc_results_subdir)
from csd_mm.utils.fileio import read_png

CLASSES = ('background', 'horse', 'rider', 'car', 'boat', 'bird')


# ---- pure helpers

def test_prediction_to_mask_drops_the_channel_and_keeps_the_ids():
    pred = torch.tensor([[[0, 5], [20, 255]]])  # (1, 2, 2) long, as mmseg's pred_sem_seg.data
    mask = prediction_to_mask(pred)
    assert mask.dtype == np.uint8 and mask.shape == (2, 2)
    assert mask.tolist() == [[0, 5], [20, 255]]
    assert prediction_to_mask(np.array([[3, 1]], dtype=np.int32)).tolist() == [[3, 1]]


@pytest.mark.parametrize('bad, message', [
    (torch.zeros(2, 2, 2, dtype=torch.long), 'shape'),
    (torch.zeros(4, dtype=torch.long), 'shape'),
    (torch.zeros(1, 2, 2), 'integer'),
    (torch.tensor([[0, 256]]), '0..255'),
    (torch.tensor([[-1, 0]]), '0..255'),
])
def test_prediction_to_mask_rejects_bad_maps(bad, message):
    with pytest.raises(ValueError, match=message) as info:
        prediction_to_mask(bad, name='img_7')
    assert 'img_7' in str(info.value)


def test_prediction_path_voc_layout_and_flat_layout():
    assert prediction_path('/o', '2008_000001') == \
        '/o/results/VOC2012/Segmentation/comp6_test_cls/2008_000001.png'
    assert prediction_path('/o', 'a', voc_split='val') == '/o/results/VOC2012/Segmentation/comp6_val_cls/a.png'
    assert prediction_path('/o', 'a', voc_format=False) == '/o/a.png'
    assert voc_results_subdir() == 'results/VOC2012/Segmentation/comp6_test_cls'
    with pytest.raises(ValueError, match='split'):
        voc_results_subdir('../x')


def test_hook_rejects_bad_arguments():
    with pytest.raises(ValueError, match='out_dir'):
        SegPredictionExportHook(out_dir='')
    with pytest.raises(ValueError, match='split'):
        SegPredictionExportHook(voc_split='a/b')


def _sample(pred, **meta):
    sample = SegDataSample(metainfo=meta)
    sample.pred_sem_seg = PixelData(data=pred)
    return sample


def test_write_names_files_by_img_id_or_img_path_stem(tmp_path):
    hook = SegPredictionExportHook(out_dir=str(tmp_path), voc_format=False)
    a = torch.tensor([[[1, 2, 0]]])
    b = torch.tensor([[[5], [4]]])
    hook.write(str(tmp_path), [_sample(a, img_id='x1', img_path='/d/ignored.jpg'),
                               _sample(b, img_path='/d/JPEGImages/2007_000032.jpg')])
    assert read_png(str(tmp_path / 'x1.png')).tolist() == [[1, 2, 0]]
    assert read_png(str(tmp_path / '2007_000032.png')).tolist() == [[5], [4]]
    assert sorted(os.listdir(tmp_path)) == ['2007_000032.png', 'x1.png']  # no temporary files left


def test_write_errors_name_the_image(tmp_path):
    hook = SegPredictionExportHook(out_dir=str(tmp_path))
    with pytest.raises(KeyError, match='img_9.*pred_sem_seg'):
        hook.write(str(tmp_path), [SegDataSample(metainfo=dict(img_id='img_9'))])
    with pytest.raises(KeyError, match='img_id nor img_path'):
        hook.write(str(tmp_path), [_sample(torch.zeros(1, 1, 1, dtype=torch.long))])


def test_iou_metric_format_only_writes_the_same_voc_masks_but_not_the_same_extras(tmp_path):
    """What the module docstring states: for VOC, mmseg's IoUMetric(format_only=True, output_dir=<comp6 folder>)
    writes the same names and pixels as the hook; with reduce_zero_label or ids > 255 it does not."""
    rng = np.random.default_rng(0)
    ids = ['2007_000032', '2007_000033']
    samples = [_sample(torch.from_numpy(rng.integers(0, 21, (1, 7, 9))), img_id=i,
                       img_path=f'/voc/JPEGImages/{i}.jpg') for i in ids]
    hook = SegPredictionExportHook(out_dir=str(tmp_path / 'hook'))
    hook.write(hook.out_dir, samples)
    metric = IoUMetric(format_only=True, output_dir=str(tmp_path / 'metric' / voc_results_subdir()))
    metric.dataset_meta = dict(classes=[str(c) for c in range(21)])
    metric.process({}, [s.to_dict() for s in samples])
    hook_dir, metric_dir = tmp_path / 'hook' / voc_results_subdir(), tmp_path / 'metric' / voc_results_subdir()
    assert sorted(os.listdir(hook_dir)) == sorted(os.listdir(metric_dir)) == [i + '.png' for i in ids]
    for i, s in zip(ids, samples):
        np.testing.assert_array_equal(read_png(str(hook_dir / f'{i}.png')), read_png(str(metric_dir / f'{i}.png')))
        np.testing.assert_array_equal(read_png(str(hook_dir / f'{i}.png')), s.pred_sem_seg.data[0].numpy())

    reduced = _sample(torch.tensor([[[0, 3], [2, 1]]]), img_id='ade', img_path='/ade/ade.jpg',
                      reduce_zero_label=True)
    hook.write(hook.out_dir, [reduced])
    metric.process({}, [reduced.to_dict()])
    assert read_png(str(hook_dir / 'ade.png')).tolist() == [[0, 3], [2, 1]]  # the model's ids
    assert read_png(str(metric_dir / 'ade.png')).tolist() == [[1, 4], [3, 2]]  # IoUMetric adds 1
    too_big = _sample(torch.tensor([[[256, 1], [2, 3]]]), img_id='big', img_path='/voc/big.jpg')
    with pytest.raises(ValueError, match='big.*0..255'):
        hook.write(hook.out_dir, [too_big])
    metric.process({}, [too_big.to_dict()])
    assert read_png(str(metric_dir / 'big.png')).tolist() == [[0, 1], [2, 3]]  # IoUMetric wraps 256 to 0


def test_registered_in_mmseg_hooks_by_name():
    assert HOOKS.get('SegPredictionExportHook') is SegPredictionExportHook
    hook = HOOKS.build(dict(type='SegPredictionExportHook', out_dir='p', voc_format=False))
    assert isinstance(hook, SegPredictionExportHook) and hook.out_dir == 'p' and not hook.voc_format


# ---- in a real test loop

@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy'))
    make_toy_voc(root, num_train=4, num_val=3, seed=5)
    return root


def _runner(root, work_dir, hook):
    norm_cfg = dict(type=BatchNorm2d, requires_grad=True)
    torch.manual_seed(0)
    model = dict(
        type=EncoderDecoder,
        data_preprocessor=dict(type=SegDataPreProcessor, mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
        backbone=dict(type=ResNetV1c, depth=18, stem_channels=8, base_channels=8, out_indices=(3, ),
                      dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg, contract_dilation=True),
        decode_head=dict(type=FCNHead, in_channels=64, in_index=0, channels=8, num_convs=1, concat_input=False,
                         num_classes=len(CLASSES), norm_cfg=norm_cfg, align_corners=False),
        test_cfg=ConfigDict(mode='whole'))  # EncoderDecoder reads it by attribute, as configs give it
    pipeline = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=PackSegInputs)]
    dataset = dict(type=BaseSegDataset, metainfo=dict(classes=CLASSES), data_root=root,
                   data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
                   ann_file='ImageSets/Segmentation/val.txt', pipeline=pipeline)
    return Runner(
        model=model,
        work_dir=str(work_dir),
        test_dataloader=dict(batch_size=2, num_workers=0, dataset=dataset,
                             sampler=dict(type=DefaultSampler, shuffle=False, round_up=False)),
        test_cfg=dict(),
        test_evaluator=dict(type=IoUMetric, iou_metrics=['mIoU']),
        custom_hooks=[hook],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope=None,
        randomness=dict(seed=0))


def test_runner_test_writes_the_model_predictions_in_voc_layout(toy_root, tmp_path):
    runner = _runner(toy_root, tmp_path / 'work', dict(type='mmseg.SegPredictionExportHook', out_dir='preds',
                                                       voc_format=True, voc_split='val'))
    metrics = runner.test()
    assert 0.0 <= metrics['mIoU'] <= 100.0
    out = tmp_path / 'work' / 'preds' / 'results/VOC2012/Segmentation/comp6_val_cls'
    ids = open(osp.join(toy_root, 'ImageSets/Segmentation/val.txt')).read().split()
    assert sorted(p.stem for p in out.glob('*.png')) == sorted(ids)
    # the files hold exactly the model's predictions, at the original image size
    model = runner.model.eval()
    loader = runner.test_dataloader
    with torch.no_grad():
        for batch in loader:
            for sample in model.test_step(batch):
                img_id = osp.splitext(osp.basename(sample.img_path))[0]
                written = read_png(str(out / f'{img_id}.png'))
                assert written.shape == tuple(sample.ori_shape)
                assert np.array_equal(written, sample.pred_sem_seg.data[0].numpy().astype(np.uint8))
                assert written.max() < len(CLASSES)


def test_absolute_out_dir_flat_layout(toy_root, tmp_path):
    target = tmp_path / 'flat'
    _runner(toy_root, tmp_path / 'work', dict(type=SegPredictionExportHook, out_dir=str(target),
                                              voc_format=False)).test()
    assert len(list(target.glob('*.png'))) == 3
    assert not (tmp_path / 'work' / 'predictions').exists()
