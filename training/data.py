"""Datasets as uint8 tensors, decoded once and cached; augmentation on tensors (on the device).

Sources accepted (docs/background.md#data-and-evaluation, datasets/README): a folder of ``<class>/<image>`` files, the
``*.tar.gz`` archives of ../shared/datasets (both halves of a dataset), or the standard CIFAR
"python" pickled batches. Class index = position of the class folder name in sorted order.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tarfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .preprocess import area_resize_uint8_batch, decode_rgb

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
MEAN = (0.5, 0.5, 0.5)  # inputs scaled to [-1, 1] as in the paper's code
STD = (0.5, 0.5, 0.5)


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 [N, 32, 32, 3]
    labels: np.ndarray  # int64 [N]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> "ImageSet":
        return ImageSet(self.images[idx], self.labels[idx], self.classes)


def _from_items(items: list[tuple[str, str, bytes]]) -> ImageSet:
    """items: (class name, file name, encoded bytes); any image size (area-resized to 32x32)."""
    classes = sorted({c for c, _, _ in items})
    index = {c: i for i, c in enumerate(classes)}
    items.sort(key=lambda t: (t[0], t[1]))
    blobs = [b for _, _, b in items]
    if len(blobs) > 2000 and (os.cpu_count() or 1) > 1:  # PNG decoding is the slow part: all cores
        with ProcessPoolExecutor() as pool:
            decoded = list(pool.map(decode_rgb, blobs, chunksize=500))
    else:
        decoded = [decode_rgb(b) for b in blobs]
    images = np.stack([img if img.shape[:2] == (32, 32) else area_resize_uint8_batch(img) for img in decoded])
    labels = np.array([index[c] for c, _, _ in items], dtype=np.int64)
    return ImageSet(images, labels, classes)


def load_folder(root: Path) -> ImageSet:
    items = [
        (p.parent.name, p.name, p.read_bytes())
        for p in sorted(root.glob("*/*"))
        if p.suffix.lower() in IMAGE_EXTS
    ]
    if not items:
        raise FileNotFoundError(f"no <class>/<image> files under {root}")
    return _from_items(items)


def load_archives(archives: list[Path], split: str = "train") -> ImageSet:
    """Read ``<dataset>/<split>/<class>/<file>`` members straight from the tar.gz halves."""
    items = []
    for archive in archives:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if member.isfile() and len(parts) >= 3 and parts[-3] == split and member.name.lower().endswith(IMAGE_EXTS):
                    items.append((parts[-2], parts[-1], tar.extractfile(member).read()))
    if not items:
        raise FileNotFoundError(f"no images in {archives}")
    return _from_items(items)


def load_cifar_python(root: Path) -> ImageSet:
    """The "python" distribution: data_batch_1..5 (CIFAR-10) or train (CIFAR-100)."""
    def unpickle(p: Path) -> dict:
        with open(p, "rb") as f:
            return pickle.load(f, encoding="latin1")

    if (root / "data_batch_1").exists():
        batches = [unpickle(root / f"data_batch_{i}") for i in range(1, 6)]
        classes = unpickle(root / "batches.meta")["label_names"]
        data = np.concatenate([b["data"] for b in batches])
        labels = np.concatenate([b["labels"] for b in batches])
    else:
        batch = unpickle(root / "train")
        classes = unpickle(root / "meta")["fine_label_names"]
        data, labels = batch["data"], np.asarray(batch["fine_labels"])
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return ImageSet(images, labels.astype(np.int64), list(classes))


# The standard CIFAR "python" distributions (URLs and md5 as torchvision's CIFAR10/CIFAR100).
CIFAR_DOWNLOADS = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python"),
}


def download_cifar(name: str, root: Path = Path("data"), url: str | None = None, md5: str | None = None) -> Path:
    """``data=download:cifar10`` (or cifar100): fetch the "python" distribution once, check its
    md5, extract it under ``root`` and return the batches folder. Needs network access."""
    import urllib.request

    default_url, default_md5, folder = CIFAR_DOWNLOADS[name]
    target = root / folder
    if target.exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    archive = root / Path(default_url).name
    if not archive.exists():
        print(f"downloading {url or default_url}", file=sys.stderr)
        with urllib.request.urlopen(url or default_url) as r, open(archive.with_suffix(".part"), "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        archive.with_suffix(".part").replace(archive)
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    if digest != (md5 or default_md5):
        archive.unlink()
        raise ValueError(f"{archive.name}: md5 {digest} does not match the published one; removed, try again")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")
    return target


def load_source(source: str | Path, cache_dir: Path | None = Path("data/cache")) -> ImageSet:
    """Load any accepted source; decoded arrays are cached under ``cache_dir`` keyed by path."""
    if str(source).startswith("download:"):
        source = download_cifar(str(source).split(":", 1)[1])
    source = Path(source)
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    cache = cache_dir / f"{source.name.replace('*', '_')}-{key}.npz" if cache_dir else None
    if cache and cache.exists():
        z = np.load(cache, allow_pickle=False)
        return ImageSet(z["images"], z["labels"], [str(c) for c in z["classes"]])
    if "*" in source.name:
        archives = sorted(source.parent.glob(source.name))
        ds = load_archives(archives)
    elif source.suffixes[-2:] == [".tar", ".gz"]:
        ds = load_archives([source])
    elif (source / "data_batch_1").exists() or (source / "train").is_file():
        ds = load_cifar_python(source)
    elif (source / "train").is_dir():  # an extracted archive: <dataset>/train/<class>/<file>
        ds = load_folder(source / "train")
    else:
        ds = load_folder(source)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, images=ds.images, labels=ds.labels, classes=np.array(ds.classes))
    return ds


def train_val_split(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of the training set (the paper: 45,000 / 5,000)."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def normalise(images_u8_nhwc: Tensor) -> Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1] (mean/std 0.5)."""
    x = images_u8_nhwc.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def random_crop_flip(x: Tensor, pad: int, generator: torch.Generator) -> Tensor:
    """Batched random crop (zero padding ``pad``) and horizontal flip via one gather."""
    n, c, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device="cpu").to(dev)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device="cpu").to(dev)
    flip = torch.rand(n, generator=generator, device="cpu").to(dev) < 0.5
    ar_h = torch.arange(h, device=dev)
    ar_w = torch.arange(w, device=dev)
    rows = (oy[:, None] + ar_h[None]).view(n, 1, h, 1)
    cols_fwd = ox[:, None] + ar_w[None]
    cols = torch.where(flip[:, None], cols_fwd.flip(1), cols_fwd).view(n, 1, 1, w)
    b = torch.arange(n, device=dev).view(n, 1, 1, 1)
    ch = torch.arange(c, device=dev).view(1, c, 1, 1)
    return padded[b, ch, rows, cols]


class TensorLoader:
    """Device-resident dataset; yields normalised (and optionally augmented) batches."""

    def __init__(self, ds: ImageSet, batch_size: int, device: torch.device, train: bool,
                 seed: int = 0, channels_last: bool = False) -> None:
        self.images = torch.from_numpy(ds.images).to(device)
        self.labels = torch.from_numpy(ds.labels).to(device)
        self.batch_size, self.train, self.device = batch_size, train, device
        self.channels_last = channels_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator).to(self.device) if self.train else torch.arange(n, device=self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = normalise(self.images[idx])
            if self.train:
                x = random_crop_flip(x, 4, self.generator)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]
