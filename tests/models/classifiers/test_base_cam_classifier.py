"""Tests of csd_mm/models/classifiers/base_cam_classifier.py (the CSD step over four views) and of
CAMHead.consistency (csd_mm/models/heads/cam_head.py)."""
import pytest
import torch
from mmengine.logging import MessageHub
from mmpretrain.models import ResNet
from mmseg.structures import SegDataSample

import csd_mm  # noqa: F401
from csd_mm.models.backbones import MCTformerViT
from csd_mm.models.classifiers import CAMClassifier, MCTformerV2Classifier
from csd_mm.models.heads import CAMHead
from csd_mm.models.losses import CSDConsistencyLoss, background_consistency, foreground_consistency

C = 4
H = W = 32
LAMBDA_FG, LAMBDA_BG = 0.3, 0.7


def _loss_cfg(**kwargs):
    return dict(type=CSDConsistencyLoss, lambda_fg=LAMBDA_FG, lambda_bg=LAMBDA_BG, bg_score=0.5, fg_ratio=0.5,
                **kwargs)


def _cam_model(cls_on_pasted=False, **loss_kwargs):
    torch.manual_seed(0)
    model = CAMClassifier(
        backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=4, strides=(1, 2, 2, 1),
                      out_indices=(3, ), norm_eval=True),  # frozen batch norms, as IRN
        head=dict(type=CAMHead, in_channels=32, num_classes=C, consistency_loss=_loss_cfg(**loss_kwargs)),
        cls_on_pasted=cls_on_pasted)
    model.init_weights()
    return model.train()


def _mct_model():
    torch.manual_seed(0)
    model = MCTformerV2Classifier(
        backbone=dict(type=MCTformerViT, arch=dict(embed_dims=32, num_layers=3, num_heads=2), num_classes=C,
                      img_size=32, patch_size=8, drop_path_rate=0.0),
        head=dict(type=CAMHead, in_channels=32, num_classes=C, kernel_size=3, bias=True,
                  consistency_loss=_loss_cfg()))
    model.init_weights()
    return model.train()


def _batch(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 4, 3, H, W, generator=g)
    samples = []
    for i in range(n):
        s = SegDataSample()
        s.gt_label = torch.tensor([1., 0., 1., 0.]) if i % 2 == 0 else torch.tensor([0., 1., 1., 0.])
        s.src_label = torch.tensor([0., 0., 0., 1.]) if i % 2 == 0 else torch.tensor([1., 0., 0., 0.])
        fg = torch.zeros(H, W, dtype=torch.bool)
        fg[4 + i:20, 8:28] = True
        bg = torch.zeros(H, W, dtype=torch.bool)
        bg[24:, :] = True
        bg[:, :4] = True
        s.src_fg_mask, s.src_bg_mask = fg, bg & ~fg
        samples.append(s)
    return inputs, samples


def _masks(samples):
    return (torch.stack([s.src_fg_mask for s in samples]), torch.stack([s.src_bg_mask for s in samples]))


def test_csd_losses_equal_the_separately_computed_terms():
    model = _cam_model()
    inputs, samples = _batch()
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_fg', 'loss_bg'}
    with torch.no_grad():
        maps = [model.forward_maps(inputs[:, v])[1] for v in range(4)]  # each view on its own
        labels = torch.stack([s.gt_label for s in samples])
        fg_mask, bg_mask = _masks(samples)
        cls = model.head.loss(model.head.pool(maps[0]), labels)
        fg = LAMBDA_FG * foreground_consistency(maps[1], maps[2], fg_mask, 0.5, 'mean')
        bg = LAMBDA_BG * background_consistency(maps[1], maps[3], bg_mask, 0.5, 'class', 0.5, 'mean')
    assert fg > 0 and bg > 0
    torch.testing.assert_close(losses['loss_cls'], cls, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses['loss_fg'], fg, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(losses['loss_bg'], bg, rtol=1e-5, atol=1e-7)
    # the classification loss ignores the other views: changing them leaves it unchanged
    other = inputs.clone()
    other[:, 1:] = torch.randn_like(other[:, 1:])
    torch.testing.assert_close(model(other, samples, mode='loss')['loss_cls'], losses['loss_cls'],
                               rtol=1e-5, atol=1e-6)


def test_no_gradient_reaches_the_source_view():
    model = _cam_model()
    inputs, samples = _batch()
    inputs.requires_grad_(True)
    losses = model(inputs, samples, mode='loss')
    sum(losses.values()).backward()
    grad = inputs.grad
    assert torch.count_nonzero(grad[:, 1]) == 0  # stop-gradient of M_s
    for v in (0, 2, 3):
        assert grad[:, v].abs().sum() > 0
    # the consistency terms alone: gradient to the pasted views only
    inputs.grad = None
    losses = model(inputs, samples, mode='loss')
    (losses['loss_fg'] + losses['loss_bg']).backward()
    assert torch.count_nonzero(inputs.grad[:, 0]) == 0 and torch.count_nonzero(inputs.grad[:, 1]) == 0
    assert inputs.grad[:, 2].abs().sum() > 0 and inputs.grad[:, 3].abs().sum() > 0


def test_cls_on_pasted_uses_the_union_label():
    model = _cam_model(cls_on_pasted=True)
    inputs, samples = _batch()
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_fg', 'loss_bg', 'loss_cls_pasted'}
    with torch.no_grad():
        union = torch.tensor([[1., 0., 1., 1.], [1., 1., 1., 0.]])  # y_m OR y_s, by hand
        expected = model.head.loss(model.head.pool(model.forward_maps(inputs[:, 2])[1]), union)
    torch.testing.assert_close(losses['loss_cls_pasted'], expected, rtol=1e-5, atol=1e-6)


def test_warmup_reads_the_message_hub_iteration():
    model = _cam_model(warmup_iters=3)
    inputs, samples = _batch()
    hub = MessageHub.get_instance('test_base_cam_classifier_warmup')
    assert MessageHub.get_current_instance() is hub
    hub.update_info('iter', 2)
    losses = model(inputs, samples, mode='loss')
    assert losses['loss_fg'].item() == 0 and losses['loss_bg'].item() == 0
    assert losses['loss_fg'].requires_grad  # still attached to the graph (DDP sees every parameter used)
    hub.update_info('iter', 3)
    losses = model(inputs, samples, mode='loss')
    assert losses['loss_fg'].item() > 0 and losses['loss_bg'].item() > 0


def test_errors():
    inputs, samples = _batch()
    model = _cam_model()
    with pytest.raises(ValueError, match='4 views'):
        model(inputs[:, :3], samples, mode='loss')
    del samples[0].src_fg_mask
    with pytest.raises(ValueError, match='src_fg_mask'):
        model(inputs, samples, mode='loss')
    torch.manual_seed(0)
    baseline = CAMClassifier(
        backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=4, out_indices=(3, )),
        head=dict(type=CAMHead, in_channels=32, num_classes=C))
    with pytest.raises(RuntimeError, match='no consistency_loss'):
        baseline(*_batch(), mode='loss')


def test_mctformer_on_four_views():
    model = _mct_model()
    inputs, samples = _batch()
    inputs.requires_grad_(True)
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_patch', 'loss_fg', 'loss_bg'}
    with torch.no_grad():
        logits, _ = model.forward_maps(inputs[:, 0])
        maps = [model.forward_maps(inputs[:, v])[1] for v in (1, 2)]
        labels = torch.stack([s.gt_label for s in samples])
        fg_mask, _ = _masks(samples)
    torch.testing.assert_close(losses['loss_cls'], model.head.loss(logits[0], labels), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses['loss_patch'], model.head.loss(logits[1], labels), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses['loss_fg'],
                               LAMBDA_FG * foreground_consistency(maps[0], maps[1], fg_mask, 0.5, 'mean'),
                               rtol=1e-4, atol=1e-7)
    sum(losses.values()).backward()
    assert torch.count_nonzero(inputs.grad[:, 1]) == 0


def _mixed_batch():
    """Three samples: a single-label image, a pair, a single-label image (the paper's reading)."""
    pairs, paired_samples = _batch(n=1, seed=3)
    g = torch.Generator().manual_seed(4)
    inputs = torch.stack([torch.randn(3, H, W, generator=g), pairs[0, 0], torch.randn(3, H, W, generator=g)])
    samples = []
    for i, label in ((0, [1., 0., 0., 0.]), (2, [0., 0., 0., 1.])):
        s = SegDataSample()
        s.gt_label = torch.tensor(label)
        samples.append(s)
    samples.insert(1, paired_samples[0])
    return inputs, samples, pairs[:, 1:]


def test_mixed_batch_losses_and_cost():
    model = _cam_model()
    inputs, samples, pair_inputs = _mixed_batch()
    images_seen = []
    handle = model.backbone.register_forward_hook(lambda m, args, out: images_seen.append(args[0].shape[0]))
    losses = model(inputs, samples, mode='loss', pair_inputs=pair_inputs)
    handle.remove()
    # the single-label images cost one forward each: [3 images + 2 pasted views] with gradients, then 1 source
    assert images_seen == [5, 1]
    with torch.no_grad():
        labels = torch.stack([s.gt_label for s in samples])
        cls = model.head.loss(model.head.pool(model.forward_maps(inputs)[1]), labels)  # L_cls on all three
        maps = [model.forward_maps(pair_inputs[:, v])[1] for v in range(3)]
        fg_mask, bg_mask = _masks(samples[1:2])
        fg = LAMBDA_FG * foreground_consistency(maps[0], maps[1], fg_mask, 0.5, 'mean')
        bg = LAMBDA_BG * background_consistency(maps[0], maps[2], bg_mask, 0.5, 'class', 0.5, 'mean')
    torch.testing.assert_close(losses['loss_cls'], cls, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses['loss_fg'], fg, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(losses['loss_bg'], bg, rtol=1e-5, atol=1e-7)
    # without pairs the step is the baseline's: one pass, the classification loss only
    images_seen.clear()
    handle = model.backbone.register_forward_hook(lambda m, args, out: images_seen.append(args[0].shape[0]))
    plain = model(inputs, samples, mode='loss')
    handle.remove()
    assert images_seen == [3] and set(plain) == {'loss_cls', 'loss_fg', 'loss_bg'}
    assert plain['loss_fg'].item() == 0 and plain['loss_bg'].item() == 0  # no pair in this batch
    torch.testing.assert_close(plain['loss_cls'], cls, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='2 paired views but 1 data samples with src_fg_mask'):
        model(inputs, samples, mode='loss', pair_inputs=torch.cat([pair_inputs, pair_inputs]))


def _training_bn_model(source_pass='deterministic'):
    """A CAM network whose batch norms train (the toy configs), without the consistency-loss warm-up."""
    torch.manual_seed(0)
    model = CAMClassifier(
        backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=4, strides=(1, 2, 2, 1),
                      out_indices=(3, ), norm_eval=False),
        head=dict(type=CAMHead, in_channels=32, num_classes=C, consistency_loss=_loss_cfg()),
        source_pass=source_pass)
    model.init_weights()
    return model.train()


def test_source_pass_uses_the_main_batch_statistics_and_updates_nothing():
    model = _training_bn_model()
    bn = model.backbone.bn1  # the stem's batch norm: its input is a plain conv of the images
    inputs, samples, pair_inputs = _mixed_batch()
    seen = []
    handle = bn.register_forward_hook(lambda m, args, out: seen.append((args[0].detach().clone(), out.detach().clone())))  # ReLU is in place
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model(inputs, samples, mode='loss', pair_inputs=pair_inputs)
    handle.remove()
    (main_in, _), (src_in, src_out) = seen
    assert main_in.shape[0] == 5 and src_in.shape[0] == 1
    # by hand: the source is normalised with the mean / biased variance of the main pass's batch
    mean = main_in.mean((0, 2, 3)).view(1, -1, 1, 1)
    var = main_in.var((0, 2, 3), unbiased=False).view(1, -1, 1, 1)
    expected = (src_in - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(src_out, expected, rtol=1e-4, atol=1e-5)
    # running statistics: exactly one update, by the main pass (a fresh copy run on the main batch alone)
    reference = _training_bn_model()
    reference.load_state_dict(state)
    with torch.no_grad():
        reference.forward_maps(torch.cat([inputs, pair_inputs[:, 1], pair_inputs[:, 2]]))
    for name, value in reference.state_dict().items():
        if 'running' in name or 'num_batches' in name:
            torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0)
    assert all(m.training for m in model.modules())  # the modes are restored
    # the former behaviour, kept as a switch: the source normalised by its own batch and counted in the statistics
    legacy = _training_bn_model('train_mode')
    legacy.load_state_dict(state)
    seen.clear()
    handle = legacy.backbone.bn1.register_forward_hook(lambda m, args, out: seen.append(out.detach().clone()))
    legacy(inputs, samples, mode='loss', pair_inputs=pair_inputs)
    handle.remove()
    assert not torch.allclose(seen[1], src_out, atol=1e-3)
    assert int(legacy.backbone.bn1.num_batches_tracked) == int(model.backbone.bn1.num_batches_tracked) + 1
    with pytest.raises(ValueError, match='source_pass'):
        _training_bn_model('eval')


def test_source_pass_is_deterministic_under_drop_path():
    torch.manual_seed(0)
    model = MCTformerV2Classifier(
        backbone=dict(type=MCTformerViT, arch=dict(embed_dims=32, num_layers=3, num_heads=2), num_classes=C,
                      img_size=32, patch_size=8, drop_path_rate=0.5),
        head=dict(type=CAMHead, in_channels=32, num_classes=C, kernel_size=3, bias=True,
                  consistency_loss=_loss_cfg()))
    model.init_weights()
    model.train()
    inputs, samples, pair_inputs = _mixed_batch()

    def source_maps(source_pass):
        model.source_pass = source_pass
        outs = []
        for seed in (1, 2):
            maps = []
            handle = model.head.register_forward_hook(lambda m, args, out: maps.append(out.detach()))
            torch.manual_seed(seed)
            model(inputs, samples, mode='loss', pair_inputs=pair_inputs)
            handle.remove()
            outs.append(maps[-1])  # the head's last call in a step is the source pass
        return outs

    first, second = source_maps('deterministic')
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(first, model.forward_maps(pair_inputs[:, 0])[1], rtol=1e-5, atol=1e-6)
    model.train()
    first, second = source_maps('train_mode')
    assert not torch.allclose(first, second)  # drop-path draws differ
