"""csd_mm.utils.checkpoint: strict checks of a checkpoint against the model it is loaded into."""
import hashlib
import os
import os.path as osp
import re

import pytest
import torch
from mmengine.runner.checkpoint import save_checkpoint

import csd_mm  # noqa: F401  (weights-only loading of mmengine checkpoints)
from csd_mm.models.backbones import MCTformerViT
from csd_mm.utils.checkpoint import (check_checkpoint_matches, is_complete_checkpoint, latest_complete_checkpoint,
                                    read_state_dict, state_dict_mismatch, weights_fingerprint)


class _Net(torch.nn.Module):

    def __init__(self, width=3):
        super().__init__()
        self.backbone = torch.nn.Linear(2, width)
        self.head = torch.nn.Linear(width, 1)


def test_state_dict_mismatch_hand_made():
    model = dict(a=torch.zeros(2), b=torch.zeros(3, 1), c=torch.zeros(1))
    ckpt = dict(b=torch.zeros(3, 2), c=torch.zeros(1), d=torch.zeros(4))
    assert state_dict_mismatch(model, ckpt) == dict(
        missing=['a'], unexpected=['d'], shape=['b: checkpoint (3, 2) vs model (3, 1)'])


def test_own_checkpoint_passes_with_and_without_wrapper_prefix(tmp_path):
    net = _Net()
    save_checkpoint(dict(state_dict=net.state_dict(), meta=dict(iter=1)), str(tmp_path / 'ok.pth'))
    check_checkpoint_matches(_Net(), str(tmp_path / 'ok.pth'))
    ddp_keys = {f'module.{k}': v for k, v in net.state_dict().items()}  # saved from a DDP-wrapped model
    torch.save(ddp_keys, str(tmp_path / 'bare.pth'))
    check_checkpoint_matches(_Net(), str(tmp_path / 'bare.pth'))


def test_mctformer_frozen_final_norm_loads_strictly(tmp_path):
    """final_norm=False keeps the (frozen, unused) norm in the state dict, so its checkpoints load strictly."""
    kwargs = dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64), num_classes=3,
                  img_size=32, patch_size=16)
    model = MCTformerViT(final_norm=False, **kwargs)
    save_checkpoint(dict(state_dict=model.state_dict()), str(tmp_path / 'mct.pth'))
    check_checkpoint_matches(MCTformerViT(final_norm=False, **kwargs), str(tmp_path / 'mct.pth'))
    check_checkpoint_matches(MCTformerViT(final_norm=True, **kwargs), str(tmp_path / 'mct.pth'))


def test_checkpoint_of_another_model_is_refused_naming_keys(tmp_path):
    save_checkpoint(dict(state_dict=torch.nn.Conv2d(3, 4, 1).state_dict()), str(tmp_path / 'deeplab.pth'))
    with pytest.raises(ValueError, match=r'checkpoint .*deeplab\.pth is not a checkpoint of this _Net .*'
                                         r'4 missing key\(s\): backbone\.bias, backbone\.weight, head\.bias, '
                                         r'head\.weight; 2 unexpected key\(s\): bias, weight'):
        check_checkpoint_matches(_Net(), str(tmp_path / 'deeplab.pth'))
    save_checkpoint(dict(state_dict=_Net(width=5).state_dict()), str(tmp_path / 'wide.pth'))
    with pytest.raises(ValueError, match=r'mis-shaped key\(s\): backbone\.bias: checkpoint \(5,\) vs model \(3,\)'):
        check_checkpoint_matches(_Net(), str(tmp_path / 'wide.pth'))


@pytest.mark.parametrize('content,message', [
    (b'', r'is not a PyTorch checkpoint \(EOFError'),
    (b'\xff\xd8\xff\xe0 a jpeg, not a checkpoint' * 10, r'is not a PyTorch checkpoint'),
])
def test_a_file_that_is_no_checkpoint_is_named(tmp_path, content, message):
    path = tmp_path / 'x.pth'
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r'checkpoint .*x\.pth ' + message) as info:
        read_state_dict(str(path))
    assert 'weights_only' not in str(info.value)
    torch.save(dict(meta=dict(iter=3)), str(path))
    with pytest.raises(ValueError, match=r'x\.pth holds no state dict of tensors'):
        read_state_dict(str(path))
    with pytest.raises(FileNotFoundError, match=r'checkpoint .*nope\.pth does not exist'):
        read_state_dict(str(tmp_path / 'nope.pth'))



def test_malicious_checkpoint_runs_no_code(tmp_path, touch_marker):
    marker = tmp_path / 'marker'
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict=dict(w=torch.zeros(1)), meta=touch_marker(marker)), path)
    with pytest.raises(ValueError, match=r'checkpoint .*evil\.pth is refused: it refers to \w+\.system') as info:
        check_checkpoint_matches(_Net(), path)
    assert not marker.exists()
    assert 'weights_only=False' not in str(info.value) and 'weights_only` set to `False' not in str(info.value)
    assert osp.isfile(path)


def _checkpoints(work_dir, iters):
    os.makedirs(work_dir, exist_ok=True)
    for i in iters:
        torch.save(dict(state_dict=dict(w=torch.full((3, ), float(i)))), osp.join(work_dir, f'iter_{i}.pth'))


def _cut_short(path):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def test_is_complete_checkpoint(tmp_path):
    _checkpoints(tmp_path, [1, 2])
    assert is_complete_checkpoint(str(tmp_path / 'iter_1.pth'))
    _cut_short(tmp_path / 'iter_2.pth')
    assert not is_complete_checkpoint(str(tmp_path / 'iter_2.pth'))
    assert not is_complete_checkpoint(str(tmp_path / 'iter_3.pth'))  # missing


def test_latest_complete_checkpoint_trusts_a_sound_last_checkpoint(tmp_path):
    _checkpoints(tmp_path, [2, 10, 4])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))  # not the highest number: as named
    assert latest_complete_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')


@pytest.mark.parametrize('pointer, why', [
    ('', 'last_checkpoint is empty'),  # killed while writing the name
    ('iter_10.pth', r'names .*iter_10.pth, which is missing or cut short'),  # cut short below
    ('iter_99.pth', r'names .*iter_99.pth, which is missing'),
    (None, 'has no last_checkpoint file'),
])
def test_latest_complete_checkpoint_falls_back_to_the_newest_complete_one(tmp_path, pointer, why):
    import logging
    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_instance('test_checkpoint_resume')  # print_log's 'current' logger
    logger.addHandler(handler)
    _checkpoints(tmp_path, [2, 4, 10])
    _cut_short(tmp_path / 'iter_10.pth')
    if pointer is not None:
        (tmp_path / 'last_checkpoint').write_text(str(tmp_path / pointer) if pointer else '')
    try:
        assert latest_complete_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    finally:
        logger.removeHandler(handler)
    message = ' '.join(r.getMessage() for r in records)
    assert re.search(why, message) and 'resuming from' in message and 'iter_4.pth' in message


def test_latest_complete_checkpoint_none_without_checkpoints(tmp_path):
    assert latest_complete_checkpoint(str(tmp_path / 'never_trained')) is None
    _checkpoints(tmp_path, [3])
    _cut_short(tmp_path / 'iter_3.pth')
    (tmp_path / 'epoch_x.pth').write_bytes(b'not a numbered checkpoint')
    assert latest_complete_checkpoint(str(tmp_path)) is None


def test_weights_fingerprint_by_hand():
    net = torch.nn.Linear(1, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.5], [-2.0]]))
        net.bias.copy_(torch.tensor([1.0, 0.0]))
    # float32 little-endian: 0.5 = 00 00 00 3f, -2.0 = 00 00 00 c0, 1.0 = 00 00 80 3f, 0.0 = 00 00 00 00
    data = (b'weight|torch.float32|(2, 1)|' + bytes.fromhex('0000003f' '000000c0')
            + b'bias|torch.float32|(2,)|' + bytes.fromhex('0000803f' '00000000'))
    expected = hashlib.blake2b(data, digest_size=8).hexdigest()
    assert weights_fingerprint(net) == expected and len(expected) == 16
    assert weights_fingerprint(net.state_dict()) == expected  # a state dict gives the same digest


def test_weights_fingerprint_follows_the_weights_not_the_object(tmp_path):
    torch.manual_seed(0)
    net = _Net()
    fingerprint = weights_fingerprint(net)
    assert weights_fingerprint(net) == fingerprint
    # saved and read back (weights only), and loaded into another model: the same weights, the same digest
    save_checkpoint(dict(state_dict=net.state_dict(), meta=dict(iter=3)), str(tmp_path / 'iter_3.pth'))
    assert weights_fingerprint(read_state_dict(str(tmp_path / 'iter_3.pth'))) == fingerprint
    other = _Net()
    assert weights_fingerprint(other) != fingerprint
    other.load_state_dict(read_state_dict(str(tmp_path / 'iter_3.pth')))
    assert weights_fingerprint(other) == fingerprint
    # one element changed, by the smallest float step
    with torch.no_grad():
        other.head.weight[0, 1] = torch.nextafter(other.head.weight[0, 1], torch.tensor(1.0))
    assert weights_fingerprint(other) != fingerprint
    # same values, other dtype or shape: other weights
    state = net.state_dict()
    assert weights_fingerprint({k: v.double() for k, v in state.items()}) != fingerprint
    assert weights_fingerprint({k: v.reshape(-1) for k, v in state.items()}) != fingerprint
    assert weights_fingerprint(dict(x=torch.zeros(2, dtype=torch.bfloat16))) != weights_fingerprint(
        dict(x=torch.zeros(2, dtype=torch.float16)))


def test_weights_fingerprint_unwraps_a_tta_model():
    from mmengine.model import BaseModel
    from mmseg.models import SegTTAModel

    class Model(BaseModel):

        def __init__(self):
            super().__init__()
            self.net = _Net()

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return self.net.head(self.net.backbone(inputs))

    model = Model()
    tta = SegTTAModel(module=model)
    assert set(tta.state_dict()) != set(model.state_dict())  # 'module.' keys
    assert weights_fingerprint(tta) == weights_fingerprint(model)
