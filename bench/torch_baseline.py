"""A PyTorch model of the task network's shape, for the GPU comparison.

    python bench/torch_baseline.py [--size 256] [--batch-size 32] [--steps 30]
        [--precisions float32,bfloat16]

ResNet-50 (torchvision, untrained) up to its stride-16 stage, a 3x3 conv to an
8-channel code (the task networks' 16 x 16 x 8 at 256 px), then five
transposed convolutions (stride 2, 4x4 kernels) back to a 3-channel 256 px
map, trained with Adam on an L1 loss against random targets: the same job as
``bench/train_throughput.py --encoders resnet50`` (the project's ResNet-50
and decoder under KERAS_BACKEND=jax). Synthetic batches on the device, so
the figure is the model's speed. ``bfloat16`` runs the forward pass under
``torch.autocast``. Prints JSON: the median images/s over the timed steps,
after warm-up steps, per precision. ``bench/gpu_check.sh`` runs both on the
same card and prints the ratio; torch is installed on the lent GPU machines,
not in this project's environment.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time


def build(torch, torchvision):
    nn = torch.nn
    resnet = torchvision.models.resnet50(weights=None)
    encoder = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                            resnet.layer1, resnet.layer2, resnet.layer3,  # stride 16, 1024 ch
                            nn.Conv2d(1024, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    widths = [8, 256, 128, 64, 32, 16]
    ups = []
    for cin, cout in zip(widths[:-1], widths[1:]):
        ups += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout),
                nn.ReLU()]
    decoder = nn.Sequential(*ups, nn.Conv2d(16, 3, 3, padding=1, stride=2))  # 5 ups, one down
    return nn.Sequential(encoder, decoder)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--precisions", default="float32,bfloat16")
    a = p.parse_args()
    import torch
    import torchvision

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    results = {}
    for precision in a.precisions.split(","):
        model = build(torch, torchvision).to(device).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), 1e-4)
        x = torch.rand(a.batch_size, 3, a.size, a.size, device=device).to(
            memory_format=torch.channels_last)
        y = torch.rand(a.batch_size, 3, a.size, a.size, device=device)
        times = []
        for step in range(a.warmup + a.steps):
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.autocast(device, dtype=torch.bfloat16,
                                enabled=precision == "bfloat16"):
                out = model(x)
                loss = (out.float() - y).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device == "cuda":
                torch.cuda.synchronize()
            if step >= a.warmup:
                times.append(time.perf_counter() - t)
        assert tuple(out.shape[-2:]) == (a.size, a.size), out.shape
        results[precision] = round(a.batch_size / statistics.median(times), 1)
    print(json.dumps({"benchmark": "torch_baseline", "machine": platform.machine(),
                      "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                      "torch": torch.__version__, "size": a.size, "batch_size": a.batch_size,
                      "images_per_s": results}, indent=1))


if __name__ == "__main__":
    main()
