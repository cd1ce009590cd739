"""The IRN-style ResNet-50 CAM configs follow IRN's official recipe (jiwoon-ahn/irn), and their training pipelines
keep ``gt_seg_map`` aligned (the CSD configs reuse ``train_pipeline[1:-1]`` on the source image and its prior)."""
from pathlib import Path

import csd_mm  # noqa: F401,I001  (first: registers the parts, installs the mmcv-lite fallbacks)
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config

from csd_mm.models.classifiers.base_cam_classifier import IMAGENET_MEAN

REPO = Path(__file__).resolve().parents[2]
VOC = REPO / 'configs/resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py'
TOY = REPO / 'configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py'
MEAN_BGR_UINT8 = tuple(int(round(m)) for m in IMAGENET_MEAN[::-1])


def _types(pipeline):
    return [t['type'].__name__ for t in pipeline]


def test_mean_pad_value_is_the_rounded_bgr_imagenet_mean():
    assert MEAN_BGR_UINT8 == (104, 116, 124)


def test_voc_schedule_is_irns():
    cfg = Config.fromfile(str(VOC))
    opt = cfg.optim_wrapper.optimizer
    assert opt.type.__name__ == 'SGD' and opt.lr == 0.1 and opt.weight_decay == 1e-4
    assert opt.momentum == 1e-4  # IRN's PolyOptimizer puts weight_decay into SGD's positional momentum slot
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {'head': dict(lr_mult=10.0)}
    (poly, ) = cfg.param_scheduler
    assert poly.type.__name__ == 'PolyLR' and poly.power == 0.9 and poly.eta_min == 0.0
    assert (poly.begin, poly.end, poly.by_epoch) == (0, 5, True) and cfg.train_cfg.max_epochs == 5
    assert cfg.train_dataloader.batch_size == 16 and cfg.train_dataloader.drop_last is True


def test_voc_augmentation_is_irns():
    cfg = Config.fromfile(str(VOC))
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert _types(pipeline) == ['LoadImageFromFile', 'RandomResize', 'RandomFlip', 'RandomCropOrPad',
                                'PackCAMInputs']  # no colour jitter
    resize, flip, crop = pipeline[1:4]
    assert tuple(resize.scale) == (640, 640) and tuple(resize.ratio_range) == (0.5, 1.0) and resize.keep_ratio
    assert (resize.backend, resize.interpolation) == ('pillow', 'bicubic')
    assert flip.prob == 0.5
    assert tuple(crop.crop_size) == (512, 512) and tuple(crop.img_pad_val) == MEAN_BGR_UINT8
    assert crop.seg_pad_val == 255


def test_voc_model_is_irns():
    model = Config.fromfile(str(VOC)).model
    bb = model.backbone
    assert (bb.depth, tuple(bb.strides), tuple(bb.dilations)) == (50, (1, 2, 2, 1), (1, 1, 1, 1))
    assert bb.frozen_stages == 2 and bb.norm_eval is True and bb.style == 'pytorch'
    assert model.head.kernel_size == 1 and model.head.bias is False
    assert dict(model.test_cfg) == dict(scales=(1.0, 0.5, 1.5, 2.0), flip=True, resize_mode='bicubic',
                                        output_stride=16)


def test_toy_config_keeps_its_numbers_and_uses_the_irn_crop():
    cfg = Config.fromfile(str(TOY))
    assert cfg.optim_wrapper.optimizer.momentum == 0.9 and cfg.optim_wrapper.optimizer.lr == 0.05
    assert cfg.model.test_cfg.output_stride == 8
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert _types(pipeline) == ['LoadImageFromFile', 'RandomResize', 'RandomFlip', 'RandomCropOrPad',
                                'PackCAMInputs']
    assert tuple(pipeline[3].crop_size) == (64, 64) and tuple(pipeline[3].img_pad_val) == MEAN_BGR_UINT8


def _blocks(h, w, block):
    """A label map of block x block squares (values 0-20) and an image whose blue channel is 10 x the label."""
    rng = np.random.default_rng(0)
    label = np.kron(rng.integers(0, 21, size=(h // block, w // block)), np.ones((block, block), int))
    label = label.astype(np.uint8)
    img = np.stack([label * 10, np.full_like(label, 90), np.full_like(label, 30)], axis=-1).astype(np.uint8)
    return img, label


@pytest.mark.parametrize('path, size, block', [(VOC, (360, 480), 40), (TOY, (48, 72), 12)], ids=['voc', 'toy'])
def test_train_pipeline_moves_gt_seg_map_with_the_image(path, size, block):
    cfg = Config.fromfile(str(path))
    middle = Compose(cfg.train_dataloader.dataset.pipeline[1:-1])
    crop = tuple(cfg.crop_size)
    img, label = _blocks(*size, block)
    np.random.seed(0)
    flips = set()
    for _ in range(8):
        out = middle(dict(img=img.copy(), gt_seg_map=label.copy(), seg_fields=[], img_shape=size, ori_shape=size))
        out_img, out_seg = out['img'], out['gt_seg_map']
        assert out_img.shape[:2] == out_seg.shape == crop and tuple(out['img_shape']) == crop
        pad = out_seg == 255
        assert np.all(out_img[pad] == MEAN_BGR_UINT8)
        # the blue channel (resized bicubic / bilinear) matches 10 x the mask (nearest) away from block edges;
        # a mask left unflipped or cropped at other offsets matches at random (about 1 pixel in 21)
        close = np.abs(out_img[..., 0][~pad].astype(int) - 10 * out_seg[~pad].astype(int)) <= 3
        assert close.mean() > 0.8, close.mean()
        flips.add(out['flip'])
    assert flips == {True, False}
