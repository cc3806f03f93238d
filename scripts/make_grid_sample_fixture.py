#!/usr/bin/env python3
"""Writes tests/fixtures/grid_sample.safetensors: PyTorch's affine_grid + grid_sample (bilinear,
zeros padding, align_corners=False) on one seeded random 3x12x16 image, for a few settings of
the semantic warp (rot degrees, scale, tx, ty of ALGORITHMS.md §3.1), also at the CIFAR size
(3x32x32); and, with a second argument, tests/fixtures/grid_sample_cifar.json: the same warps of
real CIFAR-10 test images read in place from ../shared, kept as checks rather than pixels (the
images' SHA-256, 64 seeded sample points of each warped image, and every channel's sum and sum
of squares), since nothing of ../shared may be copied into the repository.
tests/semantic.rs checks our warp against both. Needs torch, safetensors, numpy and Pillow:

    python3 scripts/make_grid_sample_fixture.py tests/fixtures/grid_sample.safetensors \
        tests/fixtures/grid_sample_cifar.json
"""

import json
import math
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

# (rot, scale, tx, ty): generic points away from pixel-aligned samples, plus a quarter turn
# and a zoom-out that samples outside the image (zero fill).
SETTINGS = [
    (17.0, 1.0, 0.0, 0.0),
    (-33.0, 1.21, 0.07, -0.11),
    (90.0, 1.0, 0.0, 0.0),
    (141.0, 0.63, -0.19, 0.23),
    (0.0, 1.37, 0.31, 0.0),
    (-170.0, 0.81, 0.0, 0.13),
]


def theta(rot, scale, tx, ty, h, w):
    """The spec's inverse map q = M(θ)ᵀ(p − (tx·W, ty·H))/s in affine_grid's normalised
    coordinates (x_n = 2p_x/W, y_n = 2p_y/H)."""
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
    return torch.tensor([
        [c / scale, -s * h / w / scale, (-2 * tx * c + 2 * ty * s * h / w) / scale],
        [s * w / h / scale, c / scale, (-2 * tx * s * w / h - 2 * ty * c) / scale],
    ], dtype=torch.float64)


# At the CIFAR size (3x32x32): rotation, scale and translation alone, then together. Real
# CIFAR pixels cannot go into the repository (../shared is read in place, never copied); the
# warp is linear in the image, so a seeded image of the same size tests the same map.
SETTINGS_32 = [
    (23.0, 1.0, 0.0, 0.0),
    (-135.0, 1.0, 0.0, 0.0),
    (0.0, 0.57, 0.0, 0.0),
    (0.0, 1.43, 0.0, 0.0),
    (0.0, 1.0, 0.17, 0.0),
    (0.0, 1.0, 0.0, -0.29),
    (61.0, 0.77, -0.08, 0.21),
]


def warp_all(image, settings):
    h, w = image.shape[-2:]
    warped = []
    for rot, scale, tx, ty in settings:
        t = theta(rot, scale, tx, ty, h, w).unsqueeze(0)
        grid = F.affine_grid(t, (1, 3, h, w), align_corners=False)
        warped.append(F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
                                    align_corners=False)[0])
    return torch.stack(warped).float().contiguous()


# Real CIFAR-10 test images (one per class), relative to ../shared/data/cifar10_test_png.
CIFAR_FILES = [
    "airplane/0003.png", "automobile/0006.png", "bird/0025.png", "cat/0000.png",
    "deer/0022.png", "dog/0012.png", "frog/0004.png", "horse/0013.png", "ship/0001.png",
    "truck/0011.png",
]
SAMPLES_PER_WARP = 64


def cifar_checks(out):
    """The warps of real CIFAR images as checks: sample points and channel moments."""
    import hashlib
    from pathlib import Path

    import numpy as np
    from PIL import Image

    root = Path(__file__).resolve().parent.parent.parent / "shared/data/cifar10_test_png"
    g = torch.Generator().manual_seed(1)
    images = []
    for rel in CIFAR_FILES:
        rgb = np.asarray(Image.open(root / rel).convert("RGB"), dtype=np.uint8)
        x = torch.from_numpy(rgb.astype(np.float64) / 255.0).permute(2, 0, 1).unsqueeze(0)
        warps = []
        for k in range(len(SETTINGS_32)):
            c = torch.randint(0, 3, (SAMPLES_PER_WARP,), generator=g)
            y = torch.randint(0, 32, (SAMPLES_PER_WARP,), generator=g)
            xx = torch.randint(0, 32, (SAMPLES_PER_WARP,), generator=g)
            w = warp_all_f64(x, SETTINGS_32[k])
            warps.append({
                "points": [[int(a), int(b), int(d)] for a, b, d in zip(c, y, xx)],
                "values": [float(w[a, b, d]) for a, b, d in zip(c, y, xx)],
                "channel_sums": [float(w[ch].sum()) for ch in range(3)],
                "channel_sums_of_squares": [float((w[ch] ** 2).sum()) for ch in range(3)],
            })
        images.append({
            "file": rel,
            "rgb_sha256": hashlib.sha256(rgb.tobytes()).hexdigest(),
            "warps": warps,
        })
    with open(out, "w") as f:
        json.dump({"settings": SETTINGS_32, "torch": torch.__version__, "images": images}, f)
        f.write("\n")
    print(f"wrote {out}")


def warp_all_f64(image, setting):
    """One warp in float64 (the checks keep full precision)."""
    rot, scale, tx, ty = setting
    h, w = image.shape[-2:]
    t = theta(rot, scale, tx, ty, h, w).unsqueeze(0)
    grid = F.affine_grid(t, (1, 3, h, w), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[0]


def main():
    out = sys.argv[1]
    if len(sys.argv) > 2:
        cifar_checks(sys.argv[2])
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 12, 16, generator=g, dtype=torch.float64)
    image32 = torch.rand(1, 3, 32, 32, generator=g, dtype=torch.float64)
    save_file(
        {
            "image": image[0].float().contiguous(),
            "warped": warp_all(image, SETTINGS),
            "image32": image32[0].float().contiguous(),
            "warped32": warp_all(image32, SETTINGS_32),
        },
        out,
        metadata={"settings": json.dumps(SETTINGS), "settings32": json.dumps(SETTINGS_32),
                  "torch": torch.__version__},
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
