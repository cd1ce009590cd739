"""Tests of csd_mm/engine/hooks/segmentation_export_hook.py: the pure helpers on hand-made inputs, then the hook
in the test loop of a real mmengine Runner with a tiny mmseg EncoderDecoder on a generated toy dataset."""
import os
import os.path as osp
import re

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


def _runner(root, work_dir, hook, distributed=False, batch_size=2, name='test'):
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
    # as tools/test.py sets up 2 CPU processes (the model in DDP)
    dist_cfg = dict(launcher='pytorch', cfg=dict(model_wrapper_cfg=dict(type='CPUDistributedDataParallel'))) \
        if distributed else {}
    return Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=f'{osp.basename(str(work_dir))}_{name}',
        test_dataloader=dict(batch_size=batch_size, num_workers=0, dataset=dataset,
                             sampler=dict(type=DefaultSampler, shuffle=False, round_up=False)),
        test_cfg=dict(),
        test_evaluator=dict(type=IoUMetric, iou_metrics=['mIoU']),
        custom_hooks=[hook],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope=None,
        randomness=dict(seed=0),
        **dist_cfg)


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


# ---- a PNG that cannot be written: the error surfaces on its rank, the other ranks do not wait for it

def _val_ids(root):
    return open(osp.join(root, 'ImageSets/Segmentation/val.txt')).read().split()


def test_a_png_that_cannot_be_written_ends_the_test_naming_it(toy_root, tmp_path):
    """One process: raised at once, by the batch of that image (a folder holds the PNG's name)."""
    out_dir = str(tmp_path / 'work/preds')
    blocked = prediction_path(out_dir, _val_ids(toy_root)[2], voc_format=False)
    os.makedirs(blocked)
    runner = _runner(toy_root, tmp_path / 'work', dict(type=SegPredictionExportHook, out_dir='preds',
                                                       voc_format=False))
    with pytest.raises(IsADirectoryError, match=re.escape(blocked)):
        runner.test()
    assert all(osp.isfile(prediction_path(out_dir, i, voc_format=False)) for i in _val_ids(toy_root)[:2])


def _png_error_rank_main(rank: int, port: int, root: str, work_dir: str) -> None:
    """One of 2 gloo ranks running the test loop (batch size 1: rank 0 has images 0 and 2, rank 1 image 1, whose
    PNG cannot be written); writes its outcome to ``<work_dir>/rank<r>.txt``."""
    from datetime import timedelta

    import torch.distributed as torch_dist
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2')
    # a short timeout: were a rank left waiting, the run would end with gloo's timeout error, not hang the suite
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2,
                                  timeout=timedelta(seconds=60))
    outcome = 'not run'
    try:
        runner = _runner(root, work_dir, dict(type=SegPredictionExportHook, out_dir='preds', voc_format=False),
                         distributed=True, batch_size=1)
        runner.test()
        outcome = 'finished'
    except Exception as e:
        outcome = f'{type(e).__name__}: {e}'
    finally:
        with open(osp.join(work_dir, f'rank{rank}.txt'), 'w') as f:
            f.write(outcome)
        torch_dist.destroy_process_group()


def test_a_png_failing_on_rank_1_ends_both_ranks_with_errors(toy_root, tmp_path, run_two_gloo_ranks):
    """2 gloo ranks: rank 1 keeps its error through the metric's gathering of the results, then both end, rank 1
    with its error naming the file, rank 0 with a RuntimeError naming rank 1 (it used to wait for rank 1)."""
    work_dir = str(tmp_path / 'work')
    out_dir = osp.join(work_dir, 'preds')
    ids = _val_ids(toy_root)
    blocked = prediction_path(out_dir, ids[1], voc_format=False)
    os.makedirs(blocked)
    hung = run_two_gloo_ranks(_png_error_rank_main, toy_root, work_dir)
    assert not hung, f'rank(s) {hung} still running after 120 s'
    outcomes = [open(osp.join(work_dir, f'rank{rank}.txt')).read() for rank in (0, 1)]
    assert outcomes[0] == (f'RuntimeError: writing the prediction PNGs to {out_dir} failed on rank(s) [1] '
                           '(see their log)')
    assert outcomes[1].startswith('IsADirectoryError: ') and blocked in outcomes[1], outcomes[1]
    assert all(osp.isfile(prediction_path(out_dir, i, voc_format=False)) for i in (ids[0], ids[2]))
