"""tools/test.py and tools/train.py (load_from) refuse a checkpoint of another model, a file that is no
checkpoint and a malicious pickle, before anything runs (the tools run in this process on the toy config)."""
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
CAM_CFG = REPO / 'configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py'


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A working folder holding data/toy_voc (the path the toy configs read)."""
    from csd_mm.datasets import make_toy_voc
    root = tmp_path_factory.mktemp('ckpt')
    make_toy_voc(str(root / 'data/toy_voc'), num_train=4, num_val=2, seed=3)
    return root



def _refused(run_tool_inprocess, monkeypatch, workspace, args, message):
    monkeypatch.chdir(workspace)
    with pytest.raises(SystemExit, match=message) as info:
        run_tool_inprocess(args)
    assert 'weights_only=False' not in str(info.value) and 'weights_only` set to `False' not in str(info.value)
    return str(info.value)


def test_test_tool_refuses_a_deeplab_checkpoint_for_a_cam_config(workspace, run_tool_inprocess, monkeypatch):
    from mmseg.models.decode_heads import FCNHead
    ckpt = workspace / 'deeplab.pth'
    head = FCNHead(in_channels=8, channels=4, num_classes=6, num_convs=1)
    torch.save(dict(state_dict={f'decode_head.{k}': v for k, v in head.state_dict().items()}, meta={}), ckpt)
    text = _refused(run_tool_inprocess, monkeypatch, workspace,
                    [REPO / 'tools/test.py', CAM_CFG, ckpt, '--work-dir', workspace / 'w1', '--no-save-cams'],
                    r'error: checkpoint .*deeplab\.pth is not a checkpoint of this CAMClassifier .*missing key\(s\): '
                    r'backbone\..*unexpected key\(s\): decode_head\.')
    assert 'mIoU' not in text and not (workspace / 'w1' / 'cams').exists()


def test_test_tool_refuses_a_file_that_is_no_checkpoint(workspace, run_tool_inprocess, monkeypatch):
    ckpt = workspace / 'notes.pth'
    ckpt.write_text('not a checkpoint')
    _refused(run_tool_inprocess, monkeypatch, workspace,
             [REPO / 'tools/test.py', CAM_CFG, ckpt, '--work-dir', workspace / 'w2', '--no-save-cams'],
             r'error: checkpoint .*notes\.pth is not a PyTorch checkpoint')


def test_test_tool_and_load_from_run_no_code_of_a_malicious_checkpoint(workspace, run_tool_inprocess,
                                                                        monkeypatch, touch_marker):
    marker = workspace / 'marker'
    ckpt = workspace / 'evil.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(1)), meta=touch_marker(marker)), ckpt)
    _refused(run_tool_inprocess, monkeypatch, workspace,
             [REPO / 'tools/test.py', CAM_CFG, ckpt, '--work-dir', workspace / 'w3', '--no-save-cams'],
             r'error: checkpoint .*evil\.pth is refused: it refers to \w+\.system')
    _refused(run_tool_inprocess, monkeypatch, workspace,
             [REPO / 'tools/train.py', CAM_CFG, '--work-dir', workspace / 'w4', '--load-from', ckpt],
             r'error: checkpoint .*evil\.pth is refused')
    assert not marker.exists()
    assert not list((workspace / 'w4').rglob('*.pth'))  # refused before training


def test_load_from_refuses_a_checkpoint_of_another_model(workspace, run_tool_inprocess, monkeypatch):
    ckpt = workspace / 'linear.pth'
    torch.save(dict(state_dict=torch.nn.Linear(2, 2).state_dict()), ckpt)
    _refused(run_tool_inprocess, monkeypatch, workspace,
             [REPO / 'tools/train.py', CAM_CFG, '--work-dir', workspace / 'w5', '--cfg-options', f'load_from={ckpt}'],
             r'error: checkpoint .*linear\.pth is not a checkpoint of this CAMClassifier')
