"""Tests of csd_mm/models/classifiers/mctformer_classifier.py (MCTformer-V2 with a tiny DeiT)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmseg.structures import SegDataSample

from csd_mm.models.backbones import MCTformerViT
from csd_mm.models.classifiers import MCTformerV2Classifier
from csd_mm.models.heads import CAMHead
from mmseg.registry import MODELS

C = 3
REPO = Path(__file__).resolve().parents[3]


def _cfg(**test_cfg):
    return dict(
        type=MCTformerV2Classifier,
        backbone=dict(type=MCTformerViT, arch=dict(embed_dims=32, num_layers=3, num_heads=2), num_classes=C,
                      img_size=32, patch_size=8, drop_path_rate=0.0),
        head=dict(type=CAMHead, in_channels=32, num_classes=C, kernel_size=3, bias=True),
        test_cfg=test_cfg or None)


def _model(**test_cfg):
    torch.manual_seed(0)
    model = MODELS.build(_cfg(**test_cfg))
    model.init_weights()
    return model


def _samples(labels, shapes, ori_shapes=None):
    samples = []
    for i, (label, shape) in enumerate(zip(labels, shapes)):
        ori = ori_shapes[i] if ori_shapes else shape
        s = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=ori, img_id=f'img{i}'))
        if label is not None:
            s.gt_label = torch.tensor(label, dtype=torch.float32)
        samples.append(s)
    return samples


def _images(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, *s), generator=g, dtype=torch.uint8) for s in shapes]


def test_loss_is_finite_and_gradients_reach_head_and_backbone():
    model = _model()
    model.train()
    shapes = [(32, 32), (32, 32)]
    data = model.data_preprocessor(dict(inputs=_images(shapes), data_samples=_samples([[1, 0, 1], [0, 1, 0]],
                                                                                      shapes)), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_patch'}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    sum(losses.values()).backward()
    params = dict(model.named_parameters())
    for name in ('head.classifier.weight', 'head.classifier.bias', 'backbone.cls_token', 'backbone.pos_embed',
                 'backbone.patch_embed.projection.weight', 'backbone.layers.0.attn.qkv.weight'):
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name


def test_forward_maps_and_tensor_mode():
    model = _model().eval()
    x = torch.randn(2, 3, 32, 40)
    logits, score_map = model.forward_maps(x)
    assert isinstance(logits, list) and len(logits) == 2
    assert all(t.shape == (2, C) for t in logits)
    assert score_map.shape == (2, C, 4, 5)
    cls_tokens, patch_tokens, _ = model.backbone(x)
    assert torch.allclose(logits[0], cls_tokens.mean(dim=-1), atol=1e-5)  # mean over the embedding
    assert torch.allclose(logits[1], score_map.mean(dim=(2, 3)))  # GAP of the patch CAM
    assert torch.allclose(score_map, model.head(patch_tokens), atol=1e-5)
    assert torch.allclose(model(x, mode='tensor'), score_map, atol=1e-6)
    # the loss is the head's soft-margin loss of each logits tensor
    labels = torch.tensor([[1., 0., 1.], [0., 1., 0.]])
    losses = model.loss(x, _samples(labels.tolist(), [(32, 40)] * 2))
    assert torch.allclose(losses['loss_cls'], model.head.loss(logits[0], labels), atol=1e-6)
    assert torch.allclose(losses['loss_patch'], model.head.loss(logits[1], labels), atol=1e-6)


def test_predict_shapes_and_invariants():
    model = _model(scales=(1.0, 0.5), flip=True).eval()
    shapes = [(32, 40), (27, 30)]  # batch padded to 32 x 40; 27 x 30 is not a multiple of the patch size
    labels = [[1, 0, 1], [0, 1, 0]]
    ori = [(48, 60), (27, 30)]
    data = model.data_preprocessor(dict(inputs=_images(shapes), data_samples=_samples(labels, shapes, ori)),
                                   False)
    out = model(**data, mode='predict')
    assert len(out) == 2
    for sample, label, (h, w) in zip(out, labels, ori):
        keys = [c for c, v in enumerate(label) if v]
        assert sample.cam.dtype == torch.float32 and sample.cam.shape == (len(keys), h, w)
        assert sample.cam_keys.dtype == torch.long and sample.cam_keys.tolist() == keys
        assert sample.cam.min() >= 0 and sample.cam.max() <= 1
        for m in sample.cam:  # min-max normalised as MCTformer: every map spans [0, 1]
            assert m.max().item() == pytest.approx(1.0, abs=1e-3) and m.min().item() == 0.0


def test_predict_crops_batch_padding():
    """A padded sample of a batch gets the same CAM as when it runs alone."""
    model = _model().eval()
    shapes = [(32, 40), (24, 16)]
    labels = [[1, 1, 1], [1, 0, 1]]
    images = _images(shapes, seed=3)
    batch = model.data_preprocessor(dict(inputs=images, data_samples=_samples(labels, shapes)), False)
    alone = model.data_preprocessor(dict(inputs=images[1:], data_samples=_samples(labels[1:], shapes[1:])),
                                    False)
    assert batch['inputs'].shape[-2:] == (32, 40) and alone['inputs'].shape[-2:] == (24, 16)
    cam_batch = model(**batch, mode='predict')[1].cam
    cam_alone = model(**alone, mode='predict')[0].cam
    assert torch.allclose(cam_batch, cam_alone, atol=1e-5)


def test_predict_without_label_keeps_all_classes_and_patch_refine_switch():
    shapes = [(16, 24)]
    refined = _model().eval()
    out = refined(**refined.data_preprocessor(dict(inputs=_images(shapes), data_samples=_samples([None], shapes)),
                                              False), mode='predict')[0]
    assert out.cam_keys.tolist() == [0, 1, 2] and out.cam.shape == (3, 16, 24)
    plain = _model(patch_refine=False, num_cam_layers=1).eval()
    out2 = plain(**plain.data_preprocessor(dict(inputs=_images(shapes), data_samples=_samples([None], shapes)),
                                           False), mode='predict')[0]
    assert not torch.allclose(out.cam, out2.cam, atol=1e-4)


def test_cam_maps_follow_mctformer_formula():
    from csd_mm.models.mctformer_cam import mctformer_cams, patch_maps_to_pixels
    model = _model().eval()
    x = torch.randn(1, 3, 32, 24)
    _, patch_tokens, attn = model.backbone(x)
    expected = patch_maps_to_pixels(mctformer_cams(attn, model.head(patch_tokens), 3, True), 8, (32, 24))
    assert torch.allclose(model.cam_score_fn(x), expected, atol=1e-6)


def test_a_few_steps_reduce_the_loss():
    model = _model()
    model.train()
    shapes = [(32, 32)] * 4
    labels = [[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]]
    data = model.data_preprocessor(dict(inputs=_images(shapes, seed=5), data_samples=_samples(labels, shapes)),
                                   True)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)

    def total():
        return sum(model(**data, mode='loss').values())

    first = total().item()
    for _ in range(15):
        optim.zero_grad()
        loss = total()
        loss.backward()
        optim.step()
    assert total().item() < 0.7 * first


def test_config_errors():
    cfg = _cfg()
    cfg['head'] = dict(cfg['head'], num_classes=C + 1)
    with pytest.raises(ValueError, match='class tokens'):
        MODELS.build(cfg)
    cfg = _cfg()
    cfg['head'] = dict(cfg['head'], in_channels=16)
    with pytest.raises(ValueError, match='embed_dims'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='unknown test_cfg'):
        MODELS.build(_cfg(scale=(1.0, )))
    with pytest.raises(ValueError, match='num_cam_layers'):
        MODELS.build(_cfg(num_cam_layers=4))
    with pytest.raises(ValueError, match='invalid mode'):
        _model()(torch.zeros(1, 3, 16, 16), mode='nope')


def test_base_config_builds_deit_small():
    cfg = Config.fromfile(str(REPO / 'configs' / '_base_' / 'models' / 'mctformer_v2_deit_small.py'))
    assert cfg.model.backbone.pretrained is None
    model = MODELS.build(cfg.model)
    assert isinstance(model, MCTformerV2Classifier)
    assert model.backbone.embed_dims == 384 and model.backbone.num_layers == 12
    assert model.backbone.cls_token.shape == (1, 20, 384)
    assert model.head.classifier.kernel_size == (3, 3) and model.head.classifier.bias is not None
    assert model.test_cfg['num_cam_layers'] == 3 and model.test_cfg['patch_refine'] is True
