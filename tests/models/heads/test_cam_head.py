"""Tests of csd_mm/models/heads/cam_head.py (CAMHead)."""
import math

import pytest
import torch
import torch.nn.functional as F

import csd_mm  # noqa: F401  (registers the parts, installs the mmcv-lite fallbacks)
from csd_mm.models.heads import CAMHead
from mmseg.registry import MODELS


def test_score_map_shapes_and_params():
    x = torch.randn(2, 6, 5, 7)
    irn = CAMHead(in_channels=6, num_classes=4)
    assert irn(x).shape == (2, 4, 5, 7)
    assert irn.classifier.bias is None and irn.classifier.kernel_size == (1, 1)
    mct = CAMHead(in_channels=6, num_classes=4, kernel_size=3, bias=True)
    assert mct(x).shape == (2, 4, 5, 7)  # padding k // 2 keeps the feature size
    assert mct.classifier.bias is not None and mct.classifier.kernel_size == (3, 3)
    # the parameters live under `classifier.`, i.e. `head.classifier.` inside a classifier
    assert {n for n, _ in mct.named_parameters()} == {'classifier.weight', 'classifier.bias'}


def test_registered_and_buildable():
    head = MODELS.build(dict(type='CAMHead', in_channels=3, num_classes=2))
    assert isinstance(head, CAMHead)


def test_pool_is_gap_and_equals_irn_classifier_on_gap_features():
    head = CAMHead(in_channels=2, num_classes=1)
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor([1.0, 2.0]).view(1, 2, 1, 1))
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 4.0]]]])  # (1, 2, 2, 2)
    score_map = head(x)
    assert torch.equal(score_map, torch.tensor([[[[1.0, 2.0], [3.0, 12.0]]]]))
    logits = head.pool(score_map)
    assert logits.shape == (1, 1)
    assert logits.item() == pytest.approx(4.5)  # (1 + 2 + 3 + 12) / 4
    # IRN: classifier applied to the GAP feature (mean 2.5 and 1.0) -> 2.5 + 2 * 1.0
    assert head(x.mean(dim=(2, 3), keepdim=True)).item() == pytest.approx(4.5)


def test_loss_hand_numbers_and_weight():
    logits = torch.tensor([[0.0, 2.0]])
    labels = torch.tensor([[1.0, 0.0]])
    # -mean(log sigmoid(0), log(1 - sigmoid(2))) = mean(log 2, log(1 + e^2))
    expected = (math.log(2.0) + math.log(1.0 + math.exp(2.0))) / 2
    head = CAMHead(in_channels=1, num_classes=2)
    assert head.loss(logits, labels).item() == pytest.approx(expected, abs=1e-6)
    assert head.loss(logits, labels).item() == pytest.approx(
        F.multilabel_soft_margin_loss(logits, labels).item(), abs=1e-7)
    weighted = CAMHead(in_channels=1, num_classes=2, loss_weight=2.0)
    assert weighted.loss(logits, labels).item() == pytest.approx(2 * expected, abs=1e-6)
    # integer labels are accepted (cast to the logits' dtype)
    assert head.loss(logits, labels.long()).item() == pytest.approx(expected, abs=1e-6)


def test_bad_input_errors():
    with pytest.raises(ValueError, match='CAMHead.*odd kernel_size'):
        CAMHead(in_channels=2, num_classes=2, kernel_size=2)
    with pytest.raises(ValueError, match='CAMHead.*num_classes'):
        CAMHead(in_channels=2, num_classes=0)
    head = CAMHead(in_channels=2, num_classes=3)
    with pytest.raises(ValueError, match='CAMHead.*features'):
        head(torch.zeros(1, 5, 2, 2))
    with pytest.raises(ValueError, match='CAMHead.*same shape'):
        head.loss(torch.zeros(2, 3), torch.zeros(2, 4))
