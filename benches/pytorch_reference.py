#!/usr/bin/env python3
"""PyTorch reference timings for `blindspot bench --vs-json FILE`.

Times the same LST iteration as `blindspot bench` on the same layouts with random frozen
weights: one forward pass that records the graph, the input gradient of the summed
cross-entropy (weights have requires_grad=False, so no weight gradients), and one more
forward pass without a graph. Also the forward-only batch of 66 hull points and the peak fp32
GEMM rate of this machine. Writes one JSON object (see `--out`).

    python3 -m venv venv && venv/bin/pip install torch torchvision timm
    venv/bin/python benches/pytorch_reference.py --out pytorch.json [--model resnet50] [--batch 8]

`--lpips lpips_alex.safetensors` (needs `pip install lpips safetensors`) also times PyTorch's
`lpips.LPIPS(net="alex")` (v0.1) on one 224x224 pair, with the backbone and heads loaded from
that file (the package would download torchvision's AlexNet otherwise), and records the
distance of a seeded pair so both sides can be checked to compute the same metric.

glibc malloc: PyTorch frees its activations on every call, and glibc returns big blocks to the
kernel, so each call page-faults them back in. `--tuned-malloc` (or MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_ in the environment) keeps them, which the issue measured at 2x for the
ResNet-50 hull forward; the JSON records which setting was in force.
"""

import argparse
import json
import os
import statistics
import sys
import time
import warnings

MALLOC_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

if "--tuned-malloc" in sys.argv and not all(v in os.environ for v in MALLOC_VARS):
    # glibc reads these at start-up only: re-run this script with them set.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="17179869184", MALLOC_TRIM_THRESHOLD_="17179869184")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402


# --- CIFAR ResNet-20 (He et al. 2016, option-A shortcut), as akamaster/pytorch_resnet_cifar10,
# with its parameter names (layer{1,2,3}.i..., linear), so its checkpoints load as they are
# (benches/hold_me_tight_reference.py does).
class CifarBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = (cout // 4) if (stride != 1 or cin != cout) else None

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        s = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(y + s)


class CifarResNet(nn.Module):
    def __init__(self, n=3, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for s, w in enumerate([16, 32, 64]):
            blocks = []
            for i in range(n):
                blocks.append(CifarBlock(cin, w, 2 if s > 0 and i == 0 else 1))
                cin = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(x.mean((2, 3)))


# --- EfficientNet-Lite0: no squeeze-excite, ReLU6, BN eps 1e-3, TensorFlow "SAME" padding.
class SameConv(nn.Conv2d):
    def forward(self, x):
        ih, iw = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]
        ph = max((-(-ih // s) - 1) * s + k - ih, 0)
        pw = max((-(-iw // s) - 1) * s + k - iw, 0)
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


def conv_bn(cin, cout, k, s=1, groups=1):
    return [SameConv(cin, cout, k, s, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=1e-3)]


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, s, expand):
        super().__init__()
        mid = cin * expand
        layers = []
        if expand != 1:
            layers += conv_bn(cin, mid, 1) + [nn.ReLU6()]
        layers += conv_bn(mid, mid, k, s, groups=mid) + [nn.ReLU6()]
        layers += conv_bn(mid, cout, 1)
        self.body = nn.Sequential(*layers)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
              (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]

    def __init__(self, classes=1000):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, 32, 3, 2), nn.ReLU6())
        blocks, cin = [], 32
        for repeats, k, s, e, out in self.STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, out, k, s if i == 0 else 1, e))
                cin = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(*conv_bn(320, 1280, 1), nn.ReLU6())
        self.fc = nn.Linear(1280, classes)

    def forward(self, x):
        return self.fc(self.head(self.blocks(self.stem(x))).mean((2, 3)))


MODELS = {
    "resnet20": (lambda: CifarResNet(3, 10), 32),
    "resnet18": (lambda: torchvision.models.resnet18(weights=None), 224),
    "resnet50": (lambda: torchvision.models.resnet50(weights=None), 224),
    "efficientnet_lite0": (lambda: EfficientNetLite0(1000), 224),
    # timm's own DeiT (random weights), with its defaults: fused scaled_dot_product_attention.
    "vit_s16": (lambda: timm_model("deit_small_patch16_224"), 224),
    "vit_ti16": (lambda: timm_model("deit_tiny_patch16_224"), 224),
}


def timm_model(name):
    import timm  # only the ViT rows need it: pip install timm

    return timm.create_model(name, pretrained=False, num_classes=1000)


def randomize_batch_norm(model):
    # Non-trivial running statistics, as trained models have (timing does not depend on them).
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))


SYNC = [lambda: None]  # torch.cuda.synchronize under --device cuda: time the work, not the launch


def timed(fn, seconds, min_iters, max_iters):
    fn()  # warm-up
    SYNC[0]()
    times, start = [], time.perf_counter()
    while len(times) < max_iters and (len(times) < min_iters or time.perf_counter() - start < seconds):
        t = time.perf_counter()
        fn()
        SYNC[0]()
        times.append((time.perf_counter() - t) * 1e3)
    return {"min": min(times), "median": statistics.median(times), "iterations": len(times)}


def peak_gemm_gflops(n=2048, reps=10):
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = min(timed(lambda: a @ b, 0, reps, reps)["min"] for _ in range(2))
    return 2 * n**3 / (best * 1e-3) / 1e9


def lpips_model(path):
    """PyTorch's lpips v0.1 AlexNet metric with the tensors of our safetensors file."""
    import lpips
    from safetensors.torch import load_file

    tensors = load_file(path)
    warnings.filterwarnings("ignore", category=UserWarning)  # torchvision's `pretrained` notice
    model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    # lpips splits alexnet().features into slices that keep the original indices as names.
    slice_of = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
    state = {}
    for name, t in tensors.items():
        if name.startswith("features."):
            index = int(name.split(".")[1])
            state[f"net.slice{slice_of[index]}.{index}.{name.split('.')[2]}"] = t
        else:
            state[name] = t
    missing, unexpected = model.load_state_dict(state, strict=False)
    # `lins.i` are aliases of `lin{i}` (one ModuleList over the same heads).
    missing = [m for m in missing if not m.startswith(("scaling_layer", "lins."))]
    if missing or unexpected:
        sys.exit(f"lpips state dict: missing {missing}, unexpected {unexpected}")
    return model.eval()


def time_lpips(path, seconds, min_iters, max_iters):
    model = lpips_model(path)
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(1, 3, 224, 224, generator=g) for _ in range(2))

    def pair():
        with torch.no_grad():
            # normalize=True: inputs in [0, 1], as blindspot's.
            return model(a, b, normalize=True)

    return {"input": 224, "batch": 1, "forward_ms": timed(pair, seconds, min_iters, max_iters),
            "seeded_pair_distance": float(pair().flatten()[0])}


def semantic_map_fn(model, image, points, batch):
    """A points x points map of p(class 0) over rot in [-180, 180] degrees and scale in
    [0.5, 1.5] (ALGORITHMS.md §3.1-3.2): affine_grid + grid_sample (bilinear, zeros,
    align_corners=False), clamp, forward, softmax, in batches, as `blindspot semantic map`."""
    h, w = image.shape[-2:]
    rots = torch.linspace(-180.0, 180.0, points, dtype=torch.float64)
    scales = torch.linspace(0.5, 1.5, points, dtype=torch.float64)
    rot, scale = torch.meshgrid(rots, scales, indexing="ij")
    rot, scale = rot.flatten(), scale.flatten()

    def thetas(r, s):
        c, sn = torch.cos(torch.deg2rad(r)), torch.sin(torch.deg2rad(r))
        zero = torch.zeros_like(r)
        return torch.stack([
            torch.stack([c / s, -sn * h / w / s, zero], -1),
            torch.stack([sn * w / h / s, c / s, zero], -1),
        ], 1).float()

    def run():
        values = []
        with torch.no_grad():
            for k in range(0, rot.numel(), batch):
                t = thetas(rot[k:k + batch], scale[k:k + batch])
                grid = F.affine_grid(t, (t.shape[0], 3, h, w), align_corners=False)
                x = F.grid_sample(image.expand(t.shape[0], -1, -1, -1), grid, mode="bilinear",
                                  padding_mode="zeros", align_corners=False).clamp(0, 1)
                values.append(F.softmax(model(x), -1)[:, 0])
        return torch.cat(values)

    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--model", action="append", choices=sorted(MODELS))
    p.add_argument("--batch", type=int, action="append")
    p.add_argument("--hull-batch", type=int, default=66)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--min-iters", type=int, default=3)
    p.add_argument("--max-iters", type=int, default=50)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--device", default="cpu", help="cpu or cuda (benches/gpu_check.sh)")
    p.add_argument("--tuned-malloc", action="store_true")
    p.add_argument("--no-hull", action="store_true")
    p.add_argument("--semantic-map", type=int, default=0, metavar="POINTS",
                   help="also time a POINTS x POINTS rot x scale semantic map on resnet20 (61)")
    p.add_argument("--map-batch", type=int, default=64)
    p.add_argument("--lpips", metavar="SAFETENSORS", help="also time LPIPS-Alex on a 224x224 pair")
    p.add_argument("--lpips-only", action="store_true", help="time only LPIPS (with --lpips)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        SYNC[0] = torch.cuda.synchronize
    torch.manual_seed(0)
    rows, hull, semantic = [], [], []
    for name in [] if args.lpips_only else (args.model or list(MODELS)):
        build, size = MODELS[name]
        model = build().eval()
        randomize_batch_norm(model)
        model = model.to(device)
        for prm in model.parameters():
            prm.requires_grad_(False)
        for batch in args.batch or [1, 8]:
            x = torch.rand(batch, 3, size, size, device=device)
            y = torch.zeros(batch, dtype=torch.long, device=device)

            def forward():
                with torch.no_grad():
                    return model(x)

            def iteration():
                xg = x.clone().requires_grad_(True)
                loss = F.cross_entropy(model(xg), y, reduction="sum")
                (grad,) = torch.autograd.grad(loss, xg)
                forward()
                return grad

            rows.append({
                "model": name, "input": size, "batch": batch,
                "lst_iter_ms": timed(iteration, args.seconds, args.min_iters, args.max_iters),
                "forward_ms": timed(forward, args.seconds / 2, args.min_iters, args.max_iters),
            })
            print(json.dumps(rows[-1]), file=sys.stderr)
        if not args.no_hull and name in ("resnet20", "resnet50"):
            xs = torch.rand(args.hull_batch, 3, size, size, device=device)

            def hull_forward():
                with torch.no_grad():
                    return model(xs)

            hull.append({"model": name, "input": size, "batch": args.hull_batch,
                         "forward_ms": timed(hull_forward, args.seconds, 2, 10)})
            print(json.dumps(hull[-1]), file=sys.stderr)
        if args.semantic_map and name == "resnet20":
            image = torch.rand(1, 3, size, size, device=device)
            maps = semantic_map_fn(model, image, args.semantic_map, args.map_batch)
            semantic.append({"model": name, "input": size, "batch": args.semantic_map ** 2,
                             "forward_ms": timed(maps, args.seconds, 2, 10)})
            print(json.dumps(semantic[-1]), file=sys.stderr)
    out = {
        "source": "pytorch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": args.device,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "malloc_tuned": all(v in os.environ for v in MALLOC_VARS),
        "peak_gemm_gflops": peak_gemm_gflops(),
        "definition": "lst_iter = forward recording the graph + input gradient (frozen weights) + forward",
        "rows": rows,
        "hull_forward": hull,
        "semantic_map": semantic,
        "lpips": [time_lpips(args.lpips, args.seconds, args.min_iters, args.max_iters)]
        if args.lpips else [],
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
