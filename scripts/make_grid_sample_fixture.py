#!/usr/bin/env python3
"""Writes tests/fixtures/grid_sample.safetensors: PyTorch's affine_grid + grid_sample (bilinear,
zeros padding, align_corners=False) on one seeded random 3x12x16 image, for a few settings of
the semantic warp (rot degrees, scale, tx, ty of ALGORITHMS.md §3.1). tests/semantic_warp.rs
checks our warp against it. Needs torch and safetensors:

    python3 scripts/make_grid_sample_fixture.py tests/fixtures/grid_sample.safetensors
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


def main():
    out = sys.argv[1]
    g = torch.Generator().manual_seed(0)
    h, w = 12, 16
    image = torch.rand(1, 3, h, w, generator=g, dtype=torch.float64)
    warped = []
    for rot, scale, tx, ty in SETTINGS:
        t = theta(rot, scale, tx, ty, h, w).unsqueeze(0)
        grid = F.affine_grid(t, (1, 3, h, w), align_corners=False)
        warped.append(F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
                                    align_corners=False)[0])
    save_file(
        {"image": image[0].float().contiguous(), "warped": torch.stack(warped).float().contiguous()},
        out,
        metadata={"settings": json.dumps(SETTINGS), "torch": torch.__version__},
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
