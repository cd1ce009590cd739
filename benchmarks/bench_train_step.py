"""Training-step cost of CSD against its baseline (same model, batch and crop), forward + backward.

    python benchmarks/bench_train_step.py [--model resnet|mctformer] [--size toy|voc] [--steps 10]

In the paper's reading (docs/method.md section 6) a batch mixes single-label images, which cost one forward and
backward as in the baseline, and multi-label images, each paired with a source image: x_m and the two pasted views
with backward, the source view forward only. With F and B the forward and backward time of one image and q the
paired share, the compute floor of the CSD / baseline step ratio is::

    floor(q) = (1 - q) + q * (3 + F / (F + B))

(about 1.96 for VOC's q = 0.41 when B = 2F, 3.33 when every image is paired). The script measures F (a forward
pass with the autograd graph) and F + B (the baseline step) on the same batch and reports each CSD step against
its floor. ``--size toy`` uses the toy CSD configs (64x64, batch 16); ``--size voc`` the VOC ones with their real
architectures at their real input sizes on synthetic tensors (ResNet-50 OS16 at 512, batch 16; DeiT-S
MCTformer-V2 at 224, batch 64). Peak memory on CUDA. Results: docs/benchmarks.md.
"""
import argparse
import time
from typing import Callable, Dict

import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import csd_mm  # noqa: F401

CONFIGS = dict(
    toy=dict(resnet=('configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py', 16, 64),
             mctformer=('configs/toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py', 16, 64)),
    voc=dict(resnet=('configs/csd/resnet50_csd_voc.py', 16, 512),
             mctformer=('configs/csd/mctformer_csd_voc.py', 64, 224)))
VOC_PAIRED_SHARE = 4333 / 10582  # multi-label images of VOC train_aug


def make_batch(n: int, paired: int, size: int, num_classes: int, seed: int = 0) -> Dict:
    """``n`` samples as the CSD dataset packs them, the first ``paired`` of them pairs (4 views)."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(n):
        views = 4 if i < paired else 1
        inputs.append(torch.randint(0, 256, (views, 3, size, size), generator=g, dtype=torch.uint8))
        s = SegDataSample()
        s.gt_label = (torch.rand(num_classes, generator=g) < 0.3).float()
        s.gt_label[i % num_classes] = 1
        if i < paired:
            s.src_label = torch.nn.functional.one_hot(torch.tensor(i % num_classes), num_classes).float()
            s.src_fg_mask = torch.rand(size, size, generator=g) < 0.3
            s.src_bg_mask = ~s.src_fg_mask & (torch.rand(size, size, generator=g) < 0.8)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def timed(fn: Callable[[], None], steps: int, device: str) -> float:
    """Mean seconds of ``fn`` over ``steps`` calls after 2 warm-up calls."""
    for _ in range(2):
        fn()
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device == 'cuda':
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', choices=('resnet', 'mctformer'), default='resnet')
    parser.add_argument('--size', choices=sorted(CONFIGS), default='toy')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--paired-share', type=float, default=VOC_PAIRED_SHARE)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    config, n, size = CONFIGS[args.size][args.model]
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(args.device).train()
    num_classes = model.num_classes

    def step(data: Dict) -> Callable[[], None]:
        def run() -> None:
            processed = model.data_preprocessor(data, True)
            losses = model(**processed, mode='loss')
            sum(losses.values()).backward()
            model.zero_grad(set_to_none=True)
        return run

    def forward_only(data: Dict) -> Callable[[], None]:
        def run() -> None:
            processed = model.data_preprocessor(data, True)
            model(**processed, mode='loss')
        return run

    single = make_batch(n, 0, size, num_classes)
    fwd = timed(forward_only(single), args.steps, args.device)
    if args.device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    base = timed(step(single), args.steps, args.device)
    base_mem = torch.cuda.max_memory_allocated() / 2**20 if args.device == 'cuda' else None
    f_share = fwd / base  # F / (F + B)
    print(f'{config}: batch {n}, {size}x{size}, {args.device} ({torch.cuda.get_device_name() if args.device == "cuda" else "CPU"})')
    print(f'  baseline step {base * 1000:.1f} ms (forward alone {fwd * 1000:.1f} ms, F/(F+B) = {f_share:.2f})'
          + (f', peak {base_mem:.0f} MiB' if base_mem else ''))
    for name, share in (('paper reading', args.paired_share), ('every image paired', 1.0)):
        paired = int(round(share * n))
        q = paired / n
        if args.device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        csd = timed(step(make_batch(n, paired, size, num_classes, seed=1)), args.steps, args.device)
        mem = torch.cuda.max_memory_allocated() / 2**20 if args.device == 'cuda' else None
        floor = (1 - q) + q * (3 + f_share)
        print(f'  CSD, {name} ({paired}/{n} paired): {csd * 1000:.1f} ms = {csd / base:.2f}x baseline; '
              f'floor {floor:.2f}x; {csd / base / floor:.2f}x the floor'
              + (f'; peak {mem:.0f} MiB ({mem / base_mem:.2f}x)' if mem else ''))


if __name__ == '__main__':
    main()
