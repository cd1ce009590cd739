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
from typing import Callable, Dict, Optional

import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import csd_mm  # noqa: F401
from _common import peak_cuda_mib, peak_rss_mib, reset_peak_cuda, section, timed

CONFIGS = dict(
    toy=dict(resnet=('configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py', 16, 64),
             mctformer=('configs/toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py', 16, 64)),
    voc=dict(resnet=('configs/csd/resnet50_csd_voc.py', 16, 512),
             mctformer=('configs/csd/mctformer_csd_voc.py', 64, 224)))
DEEPLAB = dict(toy=('configs/toy/deeplabv3plus_r18_1xb8_1300it_toy_64x64.py', 8, 64),
               voc=('configs/deeplab/deeplabv3plus_r101_d8_4xb4_20k_voc12aug_512.py', 4, 512))
VOC_PAIRED_SHARE = 4333 / 10582  # multi-label images of VOC train_aug
REDUCED_CPU_BATCH = dict(resnet=2, mctformer=4)  # --size voc --device cpu: the real models, smaller batches


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


def measure(model_name: str, size: str = 'toy', device: str = 'cpu', steps: int = 10, warmup: int = 2,
            paired_share: float = VOC_PAIRED_SHARE, batch: Optional[int] = None, log: Callable = print) -> Dict:
    """Baseline and CSD steps of one model; ``batch`` overrides the config's batch (reduced CPU runs).

    Returns:
        dict: ``config``, ``batch``, ``crop``, ``forward`` and ``baseline`` seconds, ``f_share`` = F / (F + B),
        baseline peak memory (``*_mem``: CUDA MiB, or the process's peak RSS so far on CPU) and ``modes``, one
        dict per CSD mode (``name``, ``paired``, ``step``, ``ratio``, ``floor``, ``of_floor``, ``mem``).
    """
    config, n, crop = CONFIGS['toy' if size == 'tiny' else size][model_name]
    n = batch or n
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device).train()
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

    def peak() -> float:
        return peak_cuda_mib(device) if device == 'cuda' else peak_rss_mib()

    single = make_batch(n, 0, crop, num_classes)
    fwd = timed(forward_only(single), steps, device, warmup)
    reset_peak_cuda(device)
    base = timed(step(single), steps, device, warmup)
    out = dict(config=config, batch=n, crop=crop, forward=fwd, baseline=base, f_share=fwd / base,
               baseline_mem=peak(), modes=[])
    log(f'  {model_name}: batch {n}, {crop}x{crop}: baseline step {base * 1000:.1f} ms '
        f'(forward {fwd * 1000:.1f} ms, F/(F+B) = {fwd / base:.2f})')
    for name, share in (('paper reading', paired_share), ('every image paired', 1.0)):
        paired = int(round(share * n))
        q = paired / n
        reset_peak_cuda(device)
        csd = timed(step(make_batch(n, paired, crop, num_classes, seed=1)), steps, device, warmup)
        floor = paper_floor(q, fwd / base)
        out['modes'].append(dict(name=name, paired=paired, q=q, step=csd, ratio=csd / base, floor=floor,
                                 of_floor=csd / base / floor, mem=peak()))
        log(f'  {model_name}, CSD {name} ({paired}/{n} paired): {csd * 1000:.1f} ms = {csd / base:.2f}x, '
            f'floor {floor:.2f}x')
    del model
    if device == 'cuda':
        torch.cuda.empty_cache()
    return out


def deeplab_step(size: str = 'toy', device: str = 'cpu', steps: int = 10, warmup: int = 2,
                 batch: Optional[int] = None, log: Callable = print) -> Dict:
    """Stage 3: one DeepLabV3+ training step (forward + backward) on synthetic images and masks."""
    config, n, crop = DEEPLAB['toy' if size == 'tiny' else size]
    n = batch or n
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device).train()
    g = torch.Generator().manual_seed(0)
    num_classes = cfg.model.decode_head.num_classes
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(crop, crop), pad_shape=(crop, crop), ori_shape=(crop, crop)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, crop, crop), generator=g))
        samples.append(s)
    data = dict(inputs=[torch.randint(0, 256, (3, crop, crop), generator=g, dtype=torch.uint8) for _ in range(n)],
                data_samples=samples)

    def step() -> None:
        processed = model.data_preprocessor(data, True)
        losses = model(**processed, mode='loss')
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        model.zero_grad(set_to_none=True)

    reset_peak_cuda(device)
    sec = timed(step, steps, device, warmup)
    mem = peak_cuda_mib(device) if device == 'cuda' else peak_rss_mib()
    log(f'  deeplab: batch {n}, {crop}x{crop}: step {sec * 1000:.1f} ms')
    del model
    return dict(config=config, batch=n, crop=crop, step=sec, mem=mem)


def paper_floor(q: float, f_share: float) -> float:
    """Compute floor of the CSD / baseline step ratio for a paired share ``q`` and ``f_share`` = F / (F + B)."""
    return (1 - q) + q * (3 + f_share)


def run(size: str, device: str, work_dir: str, log: Callable = print) -> Dict:
    """Both models, baseline against CSD in both modes; the run_all section."""
    reduced = device == 'cpu' and size == 'voc'
    kwargs = dict(steps=1, warmup=0) if size == 'tiny' or reduced else {}
    rows, targets, notes = [], {}, []
    mem_name = 'peak GPU memory' if device == 'cuda' else 'peak RSS of the process so far'
    for model_name in ('resnet', 'mctformer'):
        batch = (2 if size == 'tiny' else REDUCED_CPU_BATCH[model_name]) if size == 'tiny' or reduced else None
        r = measure(model_name, size, device, batch=batch, log=log, **kwargs)
        cells = [f"{r['config']} ({r['batch']}, {r['crop']})", f"{r['baseline'] * 1000:.1f} ms",
                 f"{r['f_share']:.2f}"]
        for m in r['modes']:
            cells.append(f"{m['step'] * 1000:.1f} ms, {m['ratio']:.2f}x, floor {m['floor']:.2f}x "
                         f"({m['of_floor']:.2f} of it)")
            targets[f"{model_name} {m['name']}: <= 1.10x the floor"] = bool(m['of_floor'] <= 1.10)
        cells.append(' / '.join(f'{v:.0f}' for v in [r['baseline_mem']] + [m['mem'] for m in r['modes']])
                     + ' MiB')
        rows.append(cells)
    try:  # stage 3 apart: its failure must not lose the CSD rows above
        d = deeplab_step(size, device, batch=(2 if size == 'tiny' or reduced else None), log=log, **kwargs)
        rows.append([f"{d['config']} ({d['batch']}, {d['crop']}), stage 3", f"{d['step'] * 1000:.1f} ms", '-', '-',
                     '-', f"{d['mem']:.0f} MiB"])
    except Exception as e:  # noqa: BLE001  (recorded in the table)
        rows.append([f'{DEEPLAB["toy" if size == "tiny" else size][0]}, stage 3',
                     f'failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}', '-', '-', '-', '-'])
    if reduced:
        notes.append(f'Reduced CPU run: batch {REDUCED_CPU_BATCH}, DeepLab batch 2, 1 step without warm-up; the '
                     'same models, crops and code path as `--device cuda --size voc`.')
    notes.append(f'Memory: {mem_name} (baseline / paper reading / every image paired); on CPU ru_maxrss only '
                 'grows, so each figure is the peak up to the end of that mode. The last row is stage 3 (DeepLabV3+ '
                 'on the pseudo masks, no CSD): its step alone.')
    return section('Training step: CSD / baseline (`benchmarks/bench_train_step.py`)',
                   ['config (batch, crop)', 'baseline step', 'F / (F + B)',
                    f'CSD, paper reading (q = {VOC_PAIRED_SHARE:.2f}): step, ratio, floor',
                    'CSD, every image paired: step, ratio, floor', 'memory baseline / paper / all'],
                   rows, notes, targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', choices=('resnet', 'mctformer'), default='resnet')
    parser.add_argument('--size', choices=sorted(CONFIGS), default='toy')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--paired-share', type=float, default=VOC_PAIRED_SHARE)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    print(f'{CONFIGS[args.size][args.model][0]} on {args.device}')
    measure(args.model, args.size, args.device, args.steps, paired_share=args.paired_share)


if __name__ == '__main__':
    main()
