import torch
import torch.nn as nn

from csd_mm.models.source_pass import deterministic_pass, record_batch_norm_stats


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(6),
                         nn.BatchNorm1d(6))


def test_records_the_mean_and_biased_variance_of_each_training_batch_norm():
    net = _net().train()
    x = torch.randn(5, 3, 8, 8) * 3 + 1
    with record_batch_norm_stats(net) as stats:
        net(x)
    conv_out = net[0](x).detach()
    mean, var = stats[net[1]]
    torch.testing.assert_close(mean, conv_out.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(var, conv_out.var((0, 2, 3), unbiased=False), rtol=1e-5, atol=1e-6)
    # the mean the layer itself normalised with, to the bit (same statistics kernel on the CPU)
    _, bn_mean, _ = torch.native_batch_norm(conv_out, None, None, None, None, True, 0.0, net[1].eps)
    assert torch.equal(mean, bn_mean)
    linear_out = net[4](net[3](net[2](net[1](conv_out)))).detach()
    mean1d, var1d = stats[net[5]]
    torch.testing.assert_close(mean1d, linear_out.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(var1d, linear_out.var(0, unbiased=False), rtol=1e-5, atol=1e-6)
    # the hooks are gone after the block: a later pass records nothing
    net(x)
    assert len(stats) == 2


def test_eval_mode_layers_are_not_recorded():
    net = _net().train()
    net[1].eval()  # e.g. norm_eval
    with record_batch_norm_stats(net) as stats:
        net(torch.randn(4, 3, 8, 8))
    assert list(stats) == [net[5]]


def test_deterministic_pass_normalises_with_the_recorded_statistics_and_restores_everything():
    net = _net().train()
    net(torch.randn(4, 3, 8, 8))  # initialises the lazy layer
    bn = net[1]
    main = torch.randn(6, 3, 8, 8)
    with record_batch_norm_stats(net) as stats:
        net(main)
    running = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    src = torch.randn(1, 3, 8, 8)
    seen = []
    handle = bn.register_forward_hook(lambda m, args, out: seen.append((args[0].detach(), out.detach())))
    with torch.no_grad(), deterministic_pass(net, stats):
        assert not any(m.training for m in net.modules())
        net(src)
    handle.remove()
    src_in, src_out = seen[0]
    mean, var = (t.view(1, -1, 1, 1) for t in stats[bn])
    expected = (src_in - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(src_out, expected, rtol=1e-5, atol=1e-6)
    assert all(m.training for m in net.modules())
    assert torch.equal(bn.running_mean, running[0]) and torch.equal(bn.running_var, running[1])
    assert int(bn.num_batches_tracked) == running[2]
