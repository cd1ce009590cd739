"""Tests of csd_mm/models/classifiers/cam_classifier.py (CAMClassifier) and its base config."""
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import ImgDataPreprocessor  # MultiViewDataPreprocessor subclasses it
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

import csd_mm  # noqa: F401  (registers the parts, installs the mmcv-lite fallbacks)
from csd_mm.models.cam import aggregate_multiscale, normalize_cams
from csd_mm.models.classifiers import CAMClassifier
from csd_mm.models.heads import CAMHead
from mmpretrain.models import ResNet
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIG = REPO_ROOT / 'configs' / '_base_' / 'models' / 'resnet50_cam.py'
NUM_CLASSES = 5


def tiny_model(test_cfg=None, frozen_stages=-1):
    torch.manual_seed(0)
    backbone = dict(type=ResNet, depth=18, stem_channels=8, base_channels=4, strides=(1, 2, 2, 1),
                    out_indices=(3, ), frozen_stages=frozen_stages, norm_eval=True)
    head = dict(type=CAMHead, in_channels=32, num_classes=NUM_CLASSES)
    model = CAMClassifier(backbone=backbone, head=head, test_cfg=test_cfg)
    model.init_weights()
    return model


def positive_head(model):
    """Non-negative classifier weights: backbone features are post-ReLU, so every score map is >= 0."""
    with torch.no_grad():
        model.head.classifier.weight.abs_().add_(0.01)
    return model


def sample(label, **metainfo):
    s = SegDataSample(metainfo=metainfo)
    s.gt_label = torch.tensor(label, dtype=torch.float32)
    return s


def test_default_data_preprocessor_is_imagenet_bgr_to_rgb():
    model = tiny_model()
    pre = model.data_preprocessor
    assert isinstance(pre, ImgDataPreprocessor)
    img = torch.zeros(3, 2, 2, dtype=torch.uint8)
    img[2] = 255  # BGR: red channel last
    out = pre(dict(inputs=[img], data_samples=[sample([1, 0, 0, 0, 0])]))['inputs']
    assert out.shape == (1, 3, 2, 2)
    assert out[0, 0, 0, 0].item() == pytest.approx((255 - 123.675) / 58.395, abs=1e-5)  # R first
    assert out[0, 2, 0, 0].item() == pytest.approx((0 - 103.53) / 57.375, abs=1e-5)


def test_tensor_mode_and_output_stride_16():
    model = tiny_model().eval()
    for h, w in ((64, 96), (65, 50)):
        out = model(torch.randn(2, 3, h, w), mode='tensor')
        assert out.shape == (2, NUM_CLASSES, math.ceil(h / 16), math.ceil(w / 16))
    logits_list, score_map = model.forward_maps(torch.randn(2, 3, 64, 64))
    assert isinstance(logits_list, list) and len(logits_list) == 1
    assert torch.allclose(logits_list[0], score_map.mean(dim=(2, 3)))


def test_loss_mode_finite_and_gradients_reach_head_and_backbone():
    model = tiny_model().train()
    inputs = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)]
    samples = [sample([1, 0, 1, 0, 0]), sample([0, 0, 0, 0, 1])]
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls'}
    loss = losses['loss_cls']
    assert loss.dim() == 0 and torch.isfinite(loss)
    logits = model.forward_maps(data['inputs'])[0][0]
    assert loss.item() == pytest.approx(
        torch.nn.functional.multilabel_soft_margin_loss(logits, torch.stack([s.gt_label for s in samples]))
        .item(), abs=1e-6)
    loss.backward()
    for name in ('head.classifier.weight', 'backbone.conv1.weight', 'backbone.layer4.0.downsample.0.weight'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_train_step_through_mmengine():
    model = tiny_model()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    data = dict(inputs=[torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8)],
                data_samples=[sample([0, 1, 0, 0, 0])])
    before = model.head.classifier.weight.detach().clone()
    log_vars = model.train_step(data, optim)
    assert 'loss' in log_vars and math.isfinite(float(torch.as_tensor(log_vars['loss']).detach()))
    assert not torch.equal(before, model.head.classifier.weight)


def test_loss_mode_bad_labels():
    model = tiny_model()
    with pytest.raises(ValueError, match='CAMClassifier.*gt_label of shape'):
        model(torch.randn(1, 3, 32, 32), [sample([1, 0])], mode='loss')
    with pytest.raises(ValueError, match='CAMClassifier.*no gt_label'):
        model(torch.randn(1, 3, 32, 32), [SegDataSample()], mode='loss')
    with pytest.raises(ValueError, match='CAMClassifier.*invalid mode'):
        model(torch.randn(1, 3, 32, 32), mode='probs')
    with pytest.raises(ValueError, match='CAMClassifier: unknown test_cfg'):
        tiny_model(test_cfg=dict(scale=(1.0, )))


def test_predict_any_size_shapes_range_and_keys():
    model = positive_head(tiny_model()).eval()
    s = sample([1, 0, 0, 1, 1], ori_shape=(50, 70), img_shape=(50, 70))
    out = model(torch.randn(1, 3, 50, 70), [s], mode='predict')
    assert out[0] is s
    assert s.cam.shape == (3, 50, 70) and s.cam.dtype == torch.float32
    assert s.cam_keys.dtype == torch.long and s.cam_keys.tolist() == [0, 3, 4]
    assert s.cam.min() >= 0 and s.cam.max() <= 1
    peaks = s.cam.flatten(1).amax(dim=1)
    assert torch.allclose(peaks, torch.ones(3), atol=1e-4)


def test_predict_matches_the_pure_functions():
    model = positive_head(tiny_model()).eval()
    img = torch.randn(1, 3, 40, 56)
    s = model(img, [sample([0, 1, 0, 0, 1], ori_shape=(40, 56), img_shape=(40, 56))], mode='predict')[0]
    with torch.no_grad():
        full = aggregate_multiscale(lambda x: model(x, mode='tensor'), img, scales=(1.0, 0.5, 1.5, 2.0),
                                    flip=True, out_size=(40, 56))
    assert torch.allclose(s.cam, normalize_cams(full[[1, 4]]), atol=1e-6)
    # test_cfg controls the aggregation: one scale, no flip
    model.test_cfg.update(scales=(1.0, ), flip=False)
    s = model(img, [sample([0, 1, 0, 0, 0], ori_shape=(40, 56), img_shape=(40, 56))], mode='predict')[0]
    with torch.no_grad():
        single = torch.nn.functional.interpolate(model(img, mode='tensor'), (40, 56), mode='bilinear')[0, 1:2]
    assert torch.allclose(s.cam, normalize_cams(single), atol=1e-6)


def test_predict_undoes_resize_padding_and_flip():
    model = positive_head(tiny_model(test_cfg=dict(scales=(1.0, 0.5)))).eval()
    big = torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8)
    small = torch.randint(0, 256, (3, 40, 36), dtype=torch.uint8)
    label = [1, 1, 0, 0, 0]
    # two sizes in one batch: the data preprocessor pads `small` to 48 x 64 (bottom / right)
    samples = [sample(label, img_shape=(48, 64), ori_shape=(96, 128)),  # the pipeline had halved it
               sample(label, img_shape=(40, 36), ori_shape=(40, 36))]
    data = model.data_preprocessor(dict(inputs=[big, small], data_samples=samples), False)
    assert data['inputs'].shape == (2, 3, 48, 64)
    out = model(**data, mode='predict')
    assert out[0].cam.shape == (2, 96, 128)
    alone = model.data_preprocessor(
        dict(inputs=[small], data_samples=[sample(label, img_shape=(40, 36), ori_shape=(40, 36))]), False)
    ref = model(**alone, mode='predict')[0]
    assert out[1].cam.shape == (2, 40, 36)
    assert torch.allclose(out[1].cam, ref.cam, atol=1e-5)
    # a flip done by the test pipeline is undone
    flipped = model(alone['inputs'], [sample(label, img_shape=(40, 36), ori_shape=(40, 36), flip=True,
                                             flip_direction='horizontal')], mode='predict')[0]
    assert torch.allclose(flipped.cam, ref.cam.flip(-1), atol=1e-6)


def test_predict_batch_of_equal_size_matches_single_images():
    model = positive_head(tiny_model(test_cfg=dict(scales=(1.0, 1.5)))).eval()
    imgs = torch.randn(2, 3, 32, 48)
    labels = [[1, 0, 0, 0, 1], [0, 0, 1, 0, 0]]
    batch = model(imgs, [sample(lb, img_shape=(32, 48), ori_shape=(32, 48)) for lb in labels], mode='predict')
    for i, lb in enumerate(labels):
        single = model(imgs[i:i + 1], [sample(lb, img_shape=(32, 48), ori_shape=(32, 48))], mode='predict')[0]
        assert torch.equal(batch[i].cam_keys, single.cam_keys)
        assert torch.allclose(batch[i].cam, single.cam, atol=1e-5)


def test_predict_without_labels_or_samples_keeps_all_classes():
    model = tiny_model(test_cfg=dict(scales=(1.0, ), flip=False)).eval()
    out = model(torch.randn(1, 3, 32, 32), mode='predict')
    assert out[0].cam.shape == (NUM_CLASSES, 32, 32)
    assert out[0].cam_keys.tolist() == list(range(NUM_CLASSES))


def test_head_gets_ten_times_the_learning_rate():
    model = tiny_model(frozen_stages=0)
    constructor = DefaultOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)),
        paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.)}))
    optim = constructor(model)
    lr_of = {id(p): g['lr'] for g in optim.optimizer.param_groups for p in g['params']}
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(lr_of) == len(trainable)  # the frozen stem is left out
    for name, param in trainable:
        expected = 1.0 if name.startswith('head.') else 0.1
        assert lr_of[id(param)] == pytest.approx(expected), name
    assert any(n.startswith('head.') for n, _ in model.named_parameters())


def test_build_from_base_config():
    cfg = Config.fromfile(str(CONFIG))
    assert cfg.model.head.num_classes == 20
    assert cfg.model.backbone.depth == 50 and tuple(cfg.model.backbone.strides) == (1, 2, 2, 1)
    assert cfg.model.test_cfg.output_stride == 16  # IRN's make_cam.py: upsample to the stride-16 size, crop
    cfg.model.backbone.update(depth=18, stem_channels=8, base_channels=4)
    cfg.model.head.in_channels = 32
    model = MODELS.build(cfg.model)
    assert isinstance(model, CAMClassifier) and isinstance(model.data_preprocessor, ImgDataPreprocessor)
    model.init_weights()
    model.train()
    # IRN: stem, layer1 and layer2 never train, every BN keeps its statistics
    assert not any(p.requires_grad for p in model.backbone.layer2.parameters())
    assert all(p.requires_grad for p in model.backbone.layer3.parameters())
    assert not any(m.training for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    out = model(torch.randn(1, 3, 80, 64), mode='tensor')
    assert out.shape == (1, 20, 5, 4)


def test_output_stride_in_test_cfg_is_validated():
    assert tiny_model().test_cfg['output_stride'] is None  # default: resize straight to the image size
    assert tiny_model(test_cfg=dict(output_stride=16)).test_cfg['output_stride'] == 16
    for bad in (0, 16.0, True, '16'):
        with pytest.raises(ValueError, match='CAMClassifier: test_cfg output_stride'):
            tiny_model(test_cfg=dict(output_stride=bad))


def test_predict_uses_the_output_stride_of_test_cfg():
    # needs BaseCAMClassifier.predict to pass output_stride=cfg.get('output_stride') to aggregate_multiscale
    model = positive_head(tiny_model(test_cfg=dict(scales=(1.0, 0.5), output_stride=16))).eval()
    img = torch.randn(1, 3, 40, 56)  # not multiples of 16: the aligned size is 48 x 64
    s = model(img, [sample([1, 0, 0, 1, 0], ori_shape=(40, 56), img_shape=(40, 56))], mode='predict')[0]
    with torch.no_grad():
        strided = aggregate_multiscale(lambda x: model(x, mode='tensor'), img, scales=(1.0, 0.5), flip=True,
                                       out_size=(40, 56), output_stride=16)
        direct = aggregate_multiscale(lambda x: model(x, mode='tensor'), img, scales=(1.0, 0.5), flip=True,
                                      out_size=(40, 56))
    assert s.cam.shape == (2, 40, 56)
    assert torch.allclose(s.cam, normalize_cams(strided[[0, 3]]), atol=1e-6)
    assert not torch.allclose(s.cam, normalize_cams(direct[[0, 3]]), atol=1e-3)
