#!/usr/bin/env python3
"""The seed's subspace DeepFool (LTS4/hold-me-tight, utils.py `subspace_deepfool` and
`generate_subspace_list`) on the samples of a `blindspot margins` run, for comparison.

The loop below is the seed's, ported line by line: the seed's utils.py cannot be imported with
a current torch (it imports `torch.autograd.gradcheck.zero_gradients`, removed in torch 1.9,
and `torch_dct`), so the changes are only `x.grad.zero_()` for `zero_gradients(x)`, plain
tensors for `Variable`, and `idct_2d(dirac, norm='ortho')` computed with an explicit
orthonormal DCT-II matrix (D^T dirac D, which is what torch_dct's ortho idct_2d is). The
subspaces are the seed's dense bases (kron(I_C, S)), not blindspot's mask projections, so the
comparison also checks those against each other.

    /tmp/venv/bin/python benches/hold_me_tight_reference.py --run runs/margins_resnet20 \
        --weights ../shared/weights/resnet20_cifar10.safetensors --out reference.json

Reads the run's config.json (sample files, band, step, overshoot, max_iter), loads the
akamaster CIFAR ResNet-20 from the safetensors file (ImageNet mean/std on x/255, as
../shared/MANIFEST.md says), and writes per-sample margins [S][Ns], iterations, labels and
the wall time of the margin loop to JSON. Runs on the CPU with torch's default threads
unless --threads is given.
"""

import argparse
import copy
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from safetensors.torch import load_file

from pytorch_reference import CifarResNet  # the akamaster ResNet-20, checkpoint names

DEVICE = "cpu"


class TransformLayer(nn.Module):
    """The seed's model_classes.TransformLayer: (x - mean) / std."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean = nn.Parameter(mean, requires_grad=False)
        self.std = nn.Parameter(std, requires_grad=False)

    def forward(self, x):
        return x.sub(self.mean).div(self.std)


def dct_matrix(n):
    u = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * x + 1) * u / (2 * n)) * np.sqrt(2.0 / n)
    d[0, :] = np.sqrt(1.0 / n)
    return d


def kron(a, b):
    siz1 = torch.Size(torch.tensor(a.shape[-2:]) * torch.tensor(b.shape[-2:]))
    res = a.unsqueeze(-1).unsqueeze(-3) * b.unsqueeze(-2).unsqueeze(-4)
    siz0 = res.shape[:-4]
    return res.reshape(siz0 + siz1)


def generate_subspace_list(subspace_dim, dim, subspace_step, channels):
    """The seed's generate_subspace_list; idct_2d(dirac, norm='ortho') = D^T dirac D."""
    d = torch.tensor(dct_matrix(dim), dtype=torch.float64)
    subspace_list = []
    idx_i = 0
    idx_j = 0
    while (idx_i + subspace_dim - 1 <= dim - 1) and (idx_j + subspace_dim - 1 <= dim - 1):
        S = torch.zeros((subspace_dim, subspace_dim, dim, dim), dtype=torch.float32).to(DEVICE)
        for i in range(subspace_dim):
            for j in range(subspace_dim):
                dirac = torch.zeros((dim, dim), dtype=torch.float64)
                dirac[idx_i + i, idx_j + j] = 1.0
                S[i, j] = (d.t() @ dirac @ d).to(torch.float32)
        Sp = S.view(subspace_dim * subspace_dim, dim * dim)
        if channels > 1:
            Sp = kron(torch.eye(channels, dtype=torch.float32, device=DEVICE), Sp)
        Sp = Sp.t()
        subspace_list.append(Sp.to("cpu"))
        idx_i += subspace_step
        idx_j += subspace_step
    return subspace_list


def subspace_deepfool(im, model, trans, num_classes=10, overshoot=0.02, max_iter=100, Sp=None, device=DEVICE):
    """The seed's subspace_deepfool (utils.py), line by line."""
    image = copy.deepcopy(im)
    input_shape = image.size()

    f_image = model(trans(image.clone().requires_grad_(True))).view((-1,))
    I = f_image.argsort(descending=True)
    I = I[0:num_classes]
    label_orig = I[0]

    pert_image = copy.deepcopy(image)

    r = torch.zeros(input_shape).to(device)

    label_pert = label_orig
    loop_i = 0

    while label_pert == label_orig and loop_i < max_iter:

        x = pert_image.clone().requires_grad_(True)
        fs = model(trans(x))

        pert = torch.Tensor([np.inf])[0].to(device)
        w = torch.zeros(input_shape).to(device)

        fs[0, I[0]].backward(retain_graph=True)
        grad_orig = copy.deepcopy(x.grad.data)

        for k in range(1, num_classes):
            x.grad.zero_()

            fs[0, I[k]].backward(retain_graph=True)
            cur_grad = copy.deepcopy(x.grad.data)

            w_k = cur_grad - grad_orig
            f_k = (fs[0, I[k]] - fs[0, I[0]]).data

            if Sp is None:
                pert_k = torch.abs(f_k) / w_k.norm()
            else:
                pert_k = torch.abs(f_k) / torch.matmul(Sp.t(), w_k.view([-1, 1])).norm()

            if pert_k < pert:
                pert = pert_k + 0.
                w = w_k + 0.

        if Sp is not None:
            w = torch.matmul(Sp, torch.matmul(Sp.t(), w.view([-1, 1]))).reshape(w.shape)

        r_i = torch.clamp(pert, min=1e-4) * w / w.norm()
        r = r + r_i

        pert_image = pert_image + r_i

        with torch.no_grad():
            label_pert = torch.argmax(model(trans(image + (1 + overshoot) * r)).data).item()

        loop_i += 1

    return (1 + overshoot) * r, loop_i, label_orig, label_pert, image + (1 + overshoot) * r


def load_image(path):
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(img).permute(2, 0, 1).contiguous()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a `blindspot margins` output folder")
    ap.add_argument("--weights", required=True, help="akamaster ResNet-20 safetensors")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None,
                    help="only the first N samples of the run (a prefix of the seeded draw is the draw of N)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = json.load(open(f"{args.run}/config.json"))
    plan = config["plan"]
    overshoot = config["deepfool"]["overshoot"]
    max_iter = config["deepfool"]["max_iter"]
    candidates = config["deepfool"]["candidates"]

    model = CifarResNet(3, 10)
    model.load_state_dict(load_file(args.weights))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    mean = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None]
    trans = TransformLayer(mean=mean, std=std)

    files = config["sample_files"][: args.limit] if args.limit else config["sample_files"]
    images = torch.stack([load_image(p) for p in files])
    subspaces = generate_subspace_list(plan["band"], plan["size"], plan["step"], channels=plan["channels"])
    num_classes = min(candidates, 10)

    margins, iterations, converged = [], [], []
    started = time.perf_counter()
    for s, Sp in enumerate(subspaces):
        row_m, row_i, row_c = [], [], []
        for im in images:
            r, loops, label_orig, label_pert, _ = subspace_deepfool(
                im[None], model, trans, num_classes=num_classes, overshoot=overshoot, max_iter=max_iter, Sp=Sp
            )
            row_m.append(float(r.flatten().norm()))
            row_i.append(int(loops))
            row_c.append(bool(int(label_pert) != int(label_orig)))
        margins.append(row_m)
        iterations.append(row_i)
        converged.append(row_c)
        print(f"subspace {s}: median margin {np.median(row_m):.5f}", flush=True)
    seconds = time.perf_counter() - started
    json.dump(
        {
            "source": "LTS4/hold-me-tight utils.subspace_deepfool (ported to torch %s)" % torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "samples": len(images),
            "subspaces": len(subspaces),
            "seconds": seconds,
            "margins": margins,
            "iterations": iterations,
            "converged": converged,
        },
        open(args.out, "w"),
    )
    print(f"{len(subspaces)} subspaces x {len(images)} samples in {seconds:.1f} s")


if __name__ == "__main__":
    main()
