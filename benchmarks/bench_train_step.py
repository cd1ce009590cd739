"""Training-step cost of CSD against its baseline (same model, same batch size), forward + backward.

    python benchmarks/bench_train_step.py [--model resnet|mctformer] [--batch 16] [--size 64] [--steps 10]

CSD runs the four views of each pair (target, source, fg-pasted, bg-pasted) in one batched pass, so a step costs
about four baseline steps of the same batch size; this measures it, with peak memory where CUDA is available.
Results: docs/benchmarks.md.
"""
import argparse
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope  # noqa: F401
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import csd_mm  # noqa: F401

CONFIGS = dict(resnet='configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py',
               mctformer='configs/toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py')


def batch(n: int, size: int, views: int, num_classes: int):
    inputs = [torch.randint(0, 256, (views, 3, size, size) if views > 1 else (3, size, size), dtype=torch.uint8)
              for _ in range(n)]
    samples = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_label = (torch.rand(num_classes) < 0.4).float()
        s.src_label = torch.nn.functional.one_hot(torch.tensor(0), num_classes).float()
        s.src_fg_mask = torch.rand(size, size) < 0.3
        s.src_bg_mask = ~s.src_fg_mask & (torch.rand(size, size) < 0.8)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--model', choices=sorted(CONFIGS), default='resnet')
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--steps', type=int, default=10)
    args = parser.parse_args()
    cfg = Config.fromfile(CONFIGS[args.model])
    model = MODELS.build(cfg.model)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.to(device).train()
    optim = torch.optim.SGD(model.parameters(), lr=1e-3)
    num_classes = model.num_classes
    print(f'{args.model}, batch {args.batch}, {args.size}x{args.size}, {device}')
    for name, views in (('baseline', 1), ('CSD (4 views)', 4)):
        data = batch(args.batch, args.size, views, num_classes)
        for step in range(args.steps + 2):
            if step == 2:  # two warm-up steps
                if device == 'cuda':
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
            processed = model.data_preprocessor(data, True)
            losses = model(**processed, mode='loss')
            loss = sum(losses.values())
            optim.zero_grad()
            loss.backward()
            optim.step()
        if device == 'cuda':
            torch.cuda.synchronize()
        ms = (time.perf_counter() - start) / args.steps * 1000
        mem = f', peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB' if device == 'cuda' else ''
        print(f'  {name:14s} {ms:8.1f} ms / step{mem}  losses: ' +
              ', '.join(f'{k}={v.item():.4f}' for k, v in losses.items()))


if __name__ == '__main__':
    main()
