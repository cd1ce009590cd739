"""Tests of the registered SeedMetric, driven with real SegDataSample objects."""
import json
import os

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.structures import PixelData

import csd_mm  # noqa: F401  (registers the metric)
from csd_mm.evaluation.functional import default_thresholds, summarize_sweep, sweep_confusion
from csd_mm.evaluation.metrics import SeedMetric
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

CLASSES = ['background', 'aeroplane', 'bicycle', 'bird', 'boat']


def _samples(n, seed=0, numpy_cams=False):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = int(rng.integers(3, 9)), int(rng.integers(3, 9))
        k = int(rng.integers(0, 3))
        keys = np.sort(rng.choice(4, size=k, replace=False)).astype(np.int64)
        cam = rng.random((k, h, w)).astype(np.float32)
        gt = rng.integers(0, 5, size=(1, h, w))
        gt[rng.random((1, h, w)) < 0.1] = 255
        s = SegDataSample(metainfo=dict(img_id=f'img{i}', img_path=f'/data/img{i}.jpg', ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.from_numpy(gt))
        s.cam = cam if numpy_cams else torch.from_numpy(cam)
        s.cam_keys = keys if numpy_cams else torch.from_numpy(keys)
        out.append((s, cam, keys, gt[0]))
    return out


def _expected(items, thresholds=None):
    thresholds = default_thresholds() if thresholds is None else thresholds
    conf = sum(sweep_confusion(cam, keys, gt, len(CLASSES), thresholds) for _, cam, keys, gt in items)
    return summarize_sweep(conf, thresholds)


def test_registered_and_built_from_config():
    metric = METRICS.build(dict(type='SeedMetric', num_classes=5))
    assert isinstance(metric, SeedMetric) and metric.prefix == 'seed'
    assert metric.thresholds.tolist() == default_thresholds().tolist()


@pytest.mark.parametrize('numpy_cams', [False, True])
def test_evaluator_end_to_end(numpy_cams):
    items = _samples(4, seed=1, numpy_cams=numpy_cams)
    evaluator = Evaluator(SeedMetric())  # num_classes from dataset_meta
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process([s for s, *_ in items[:3]])
    evaluator.process([items[3][0]])
    assert len(evaluator.metrics[0].results) == 1  # one running sum, not one entry per image
    metrics = evaluator.evaluate(4)
    exp = _expected(items)
    assert set(metrics) == {'seed/mIoU', 'seed/best_threshold'}
    assert metrics['seed/mIoU'] == pytest.approx(exp['best_miou'] * 100)
    assert metrics['seed/best_threshold'] == exp['best_threshold']
    assert evaluator.metrics[0].results == []  # reset for the next evaluation


def test_distributed_collection_contract():
    """Each rank keeps one entry; compute_metrics sums what collect_results gathers from the ranks."""
    items = _samples(5, seed=2)
    rank0, rank1 = SeedMetric(num_classes=5), SeedMetric(num_classes=5)
    rank0.process(None, [s for s, *_ in items[0::2]])  # direct SegDataSample input works too
    rank1.process(None, [s.to_dict() for s, *_ in items[1::2]])
    assert len(rank0.results) == 1 and len(rank1.results) == 1
    assert rank0.results[0].shape == (60, 5, 5) and rank0.results[0].dtype == np.int64
    merged = rank0.compute_metrics([rank0.results[0], rank1.results[0]])
    exp = _expected(items)
    assert merged['mIoU'] == pytest.approx(exp['best_miou'] * 100)
    assert merged['best_threshold'] == exp['best_threshold']
    # sanity: the two halves alone do not give the same curve as the whole
    whole = sum(sweep_confusion(c, k, g, 5, default_thresholds()) for _, c, k, g in items)
    np.testing.assert_array_equal(rank0.results[0] + rank1.results[0], whole)


def test_padded_duplicate_is_dropped():
    """As collect_results drops per-sample results beyond the dataset size, evaluate drops the padding."""
    items = _samples(3, seed=3)
    metric = SeedMetric(num_classes=5, thresholds=[0.1, 0.2, 0.4])
    metric.process(None, [s for s, *_ in items] + [items[0][0]])  # the sampler padded sample 0 again
    got = metric.evaluate(3)
    exp = _expected(items, [0.1, 0.2, 0.4])
    assert got['seed/mIoU'] == pytest.approx(exp['best_miou'] * 100)
    metric.process(None, [s for s, *_ in items])  # counters were reset: nothing dropped now
    assert metric.evaluate(3)['seed/mIoU'] == pytest.approx(exp['best_miou'] * 100)


def test_log_and_out_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log_file = tmp_path / 'logs' / 'seed.log'
    log_file.parent.mkdir()
    MMLogger.get_instance('test_seed_metric_log', log_file=str(log_file))
    items = _samples(3, seed=4)
    metric = SeedMetric(prefix='cam')
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process(None, [s for s, *_ in items])
    res = metric.evaluate(3)
    assert set(res) == {'cam/mIoU', 'cam/best_threshold'}
    assert sorted(os.listdir(tmp_path)) == ['logs']  # nothing written without out_file
    text = log_file.read_text()
    assert 'aeroplane' in text and 't=0.59' in text and f'best mIoU: {res["cam/mIoU"]:.2f}' in text

    out = tmp_path / 'res' / 'sweep.json'
    metric = SeedMetric(out_file=str(out))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process(None, [s for s, *_ in items])
    res = metric.evaluate(3)
    data = json.loads(out.read_text())
    exp = _expected(items)
    assert data['best_threshold'] == res['seed/best_threshold'] == exp['best_threshold']
    assert data['best_miou'] == pytest.approx(exp['best_miou'])
    assert len(data['curve']) == 60 and data['curve'][0][0] == 0.0 and data['curve'][-1][0] == 0.59
    assert list(data['per_class_iou']) == CLASSES
    assert os.listdir(out.parent) == ['sweep.json']


def test_errors():
    metric = SeedMetric()
    s, *_ = _samples(1)[0]
    with pytest.raises(ValueError, match='num_classes'):
        metric.process(None, [s])
    metric = SeedMetric(num_classes=5)
    bad = SegDataSample(metainfo=dict(img_path='/data/broken.jpg'))
    bad.gt_sem_seg = PixelData(data=torch.zeros(1, 2, 2, dtype=torch.uint8))
    with pytest.raises(KeyError, match='broken.jpg'):
        metric.process(None, [bad])
    bad.cam, bad.cam_keys = torch.zeros(1, 3, 3), torch.tensor([0])
    with pytest.raises(ValueError, match='broken.jpg.*spatial shape'):
        metric.process(None, [bad])
    with pytest.raises(ValueError, match='ascending'):
        SeedMetric(thresholds=[0.3, 0.1])
