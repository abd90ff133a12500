"""Out-of-distribution calibration: pick, per answering head, the free-energy threshold above which
an answer is flagged "probably none of the model's classes", and measure how often that flag
fires on the model's own validation images and on images of other kinds.

The score is the free energy of the answering head's logits, E = -logsumexp(z) (Liu et al. 2020,
"Energy-based Out-of-distribution Detection"): it needs no extra graph output, so the Worker
computes it for edge and cloud answers alike (workers/src/infer/ood.ts). Each head gets two
thresholds, fitted on half of the validation split (`fit_thresholds`): `forcedThresholds`, the
`tpr` quantile of the head's energies over every image (exit=edge / exit=cloud and degraded
answers), and `thresholds` for exit=auto answers at the manifest's exit threshold, set so that a
share 1 - `tpr` of the images is flagged on that route. The other half measures the false-flag
rate. Nothing here looks at the official test
splits, and the OOD sets only measure: no threshold is tuned on them.

OOD sets (none of them is any model's training data):
  other-cifar   the validation split of the other CIFAR dataset (near OOD: CIFAR-10 and
                CIFAR-100 share no class by construction)
  photo-crops   random crops of the sample photographs that ship with scikit-image (skimage/data:
                textures, a cameraman, coins, the moon, a rocket, ...), area-resized as the
                Worker resizes uploads; a photograph whose subject is one of the model's classes
                (the cat for CIFAR-10, the rocket for CIFAR-100, ...) is left out (far OOD)
  synthetic     uniform and Gaussian noise, solid colours, gradients, checkerboards

    python -m training ood --model models/cifar10 --data '../shared/datasets/cifar10-train-*.tar.gz' \\
        --other '../shared/datasets/cifar100-train-*.tar.gz'

writes the manifest's `ood` section (thresholds and the measured rates) and prints the rates.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .contracts import CLOUD_INPUT, CLOUD_OUTPUT, EDGE_EXIT_LOGITS, EDGE_INPUT, EDGE_SPLIT
from .data import load_source, train_val_split
from .manifest import write_json
from .metrics import softmax_entropy
from .onnx_pair import normalise_u8, sessions
from .preprocess import area_weights
from .wire import decode_activation, encode_activation

SCORE = "energy"
RULE = "energy > threshold"
DEFAULT_TPR = 0.95
# scikit-image's sample photographs (skimage/data, all CC0 or public domain) and the CIFAR class
# names their subject goes by: a model whose labels include one of them does not see that photo
PHOTOS: dict[str, tuple[str, ...]] = {
    "astronaut.png": ("woman",),
    "brick.png": (),
    "camera.png": ("man",),
    "cell.png": (),
    "chelsea.png": ("cat",),
    "clock_motion.png": ("clock",),
    "coffee.png": ("cup",),
    "coins.png": (),
    "color.png": (),
    "grass.png": (),
    "gravel.png": (),
    "horse.png": ("horse",),
    "hubble_deep_field.jpg": (),
    "ihc.png": (),
    "logo.png": (),
    "moon.png": (),
    "motorcycle_left.png": ("motorcycle",),
    "page.png": (),
    "retina.jpg": (),
    "rocket.jpg": ("rocket",),
    "text.png": (),
}


def photos_for(labels: list[str]) -> list[str]:
    """The sample photographs none of whose subjects is one of `labels`."""
    return [name for name, subjects in PHOTOS.items() if not set(subjects) & set(labels)]


def free_energy(logits: np.ndarray) -> np.ndarray:
    """E = -logsumexp(z) per row, float64 (workers/src/infer/ood.ts computes the same in the Worker)."""
    z = logits.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    return -(m[:, 0] + np.log(np.exp(z - m).sum(axis=1)))


def threshold_for(energies: np.ndarray, tpr: float) -> float:
    """The energy at or under which a fraction `tpr` of in-distribution answers fall."""
    return float(np.quantile(energies.astype(np.float64), tpr, method="higher"))


def photo_crops(count: int, rng: np.random.Generator, names: list[str]) -> np.ndarray:
    """uint8 [count, 32, 32, 3]: square crops of scikit-image's sample photographs `names`, side
    32 px to the whole short side, at random places, half of them mirrored, area-resized like an
    upload. Grey photographs are replicated to RGB and alpha dropped, as the Worker decodes."""
    import skimage
    from PIL import Image

    root = Path(skimage.__file__).parent / "data"
    photos = []
    for name in names:
        with Image.open(root / name) as im:
            photos.append(np.asarray(im.convert("RGB")))
    out = np.empty((count, 32, 32, 3), np.uint8)
    for i in range(count):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        side = int(rng.integers(32, min(h, w) + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = img[y:y + side, x:x + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        # the Worker's area resize (training/preprocess.py), as two matrix products: the einsum
        # there is exact but far too slow for thousands of large crops
        weights = area_weights(side)
        rows = np.tensordot(weights, crop.astype(np.float64), axes=(1, 0))  # [32, side, 3]
        resized = np.tensordot(rows, weights, axes=(1, 1)).transpose(0, 2, 1)  # [32, 32, 3]
        out[i] = np.clip(np.rint(resized), 0, 255).astype(np.uint8)
    return out


def synthetic(count: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [count, 32, 32, 3]: five kinds in turn: uniform noise, Gaussian noise around a random
    colour, a solid colour, a linear gradient between two colours, a checkerboard of two colours."""
    out = np.empty((count, 32, 32, 3), np.uint8)
    yy, xx = np.mgrid[0:32, 0:32]
    for i in range(count):
        kind = i % 5
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        if kind == 0:
            img = rng.integers(0, 256, (32, 32, 3))
        elif kind == 1:
            img = a + rng.normal(0, rng.uniform(8, 64), (32, 32, 3))
        elif kind == 2:
            img = np.broadcast_to(a, (32, 32, 3))
        elif kind == 3:
            angle = rng.uniform(0, 2 * np.pi)
            t = ((np.cos(angle) * xx + np.sin(angle) * yy) / 45.0 + 0.5).clip(0, 1)[..., None]
            img = a * (1 - t) + b * t
        else:
            cell = int(rng.choice([2, 4, 8]))
            mask = (((yy // cell) + (xx // cell)) % 2)[..., None]
            img = np.where(mask == 1, a, b)
        out[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def served_heads(folder: Path, images_u8: np.ndarray, precision: str = "int8", batch: int = 250,
                 desc: str | None = None) -> dict[str, np.ndarray]:
    """Exit and final logits as the Worker serves them: the final head runs on the split
    activation after its trip over the wire at `precision`, one image per frame."""
    edge, cloud, manifest = sessions(folder)
    inputs = normalise_u8(images_u8, manifest)
    exits, finals = [], []
    for i in tqdm(range(0, len(inputs), batch), desc=desc, disable=desc is None, file=sys.stderr):
        e, s = edge.run([EDGE_EXIT_LOGITS, EDGE_SPLIT], {EDGE_INPUT: inputs[i:i + batch]})
        shape = list(s.shape[1:])
        wired = np.stack([decode_activation(encode_activation(x, [1, *shape], manifest["fingerprint"], precision))[1][0]
                          for x in s])
        (f,) = cloud.run([CLOUD_OUTPUT], {CLOUD_INPUT: wired.astype(np.float32)})
        exits.append(e)
        finals.append(f)
    return {"edge": np.concatenate(exits), "cloud": np.concatenate(finals)}


def routes(heads: dict[str, np.ndarray], exit_threshold: float) -> np.ndarray:
    """True where exit=auto answers at the edge (exit entropy < `exit_threshold`)."""
    return softmax_entropy(heads["edge"]) < exit_threshold


def fit_thresholds(heads: dict[str, np.ndarray], exit_threshold: float, tpr: float) -> dict[str, dict[str, float]]:
    """`forced`: per head, the `tpr` quantile of its energies over every image, for answers whose
    head was not chosen by the exit rule (exit=edge, exit=cloud, degraded).

    `routed`, for exit=auto answers: the edge answers only the images its exit head is confident
    about, whose energies run far lower than the average image's, so its threshold is a quantile
    over those images alone (one over every image would never flag an edge answer). The final
    head's is a quantile over every image: the images sent to it are the hard ones, and one fitted
    on them alone would let most of the other images' energies pass too. Both at one level q,
    chosen so that exactly a share 1 - `tpr` of these images is flagged under exit=auto."""
    at_edge = routes(heads, exit_threshold)
    e_edge, e_cloud = free_energy(heads["edge"]), free_energy(heads["cloud"])

    def routed_at(q: float) -> dict[str, float]:
        return {"edge": threshold_for(e_edge[at_edge], q) if at_edge.any() else float("inf"), "cloud": threshold_for(e_cloud, q)}

    def flagged(t: dict[str, float]) -> float:
        return float(np.where(at_edge, e_edge > t["edge"], e_cloud > t["cloud"]).mean())

    lo, hi = tpr, 1.0  # at q = tpr at least 1 - tpr is flagged (the hard images are flagged more)
    for _ in range(40):  # bisection on q: the flagged share falls as q rises
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if flagged(routed_at(mid)) > 1 - tpr else (lo, mid)
    return {
        "routed": routed_at(hi),
        "forced": {"edge": threshold_for(e_edge, tpr), "cloud": threshold_for(e_cloud, tpr)},
    }


def flag_rates(heads: dict[str, np.ndarray], thresholds: dict[str, dict[str, float]], exit_threshold: float) -> dict:
    """Share of images flagged: under exit=auto (overall and by the head that answered), and with
    every image forced to one head."""
    at_edge = routes(heads, exit_threshold)
    e_edge, e_cloud = free_energy(heads["edge"]), free_energy(heads["cloud"])
    routed = thresholds["routed"]
    flagged = np.where(at_edge, e_edge > routed["edge"], e_cloud > routed["cloud"])
    return {
        "images": int(len(flagged)),
        "flagged": float(flagged.mean()),
        "edgeShare": float(at_edge.mean()),
        "flaggedAtEdge": float(flagged[at_edge].mean()) if at_edge.any() else None,
        "flaggedAtCloud": float(flagged[~at_edge].mean()) if (~at_edge).any() else None,
        "forcedEdge": float((e_edge > thresholds["forced"]["edge"]).mean()),
        "forcedCloud": float((e_cloud > thresholds["forced"]["cloud"]).mean()),
    }


def calibrate_ood(folder: Path, data: str, other: str, tpr: float = DEFAULT_TPR, count: int = 1000,
                  seed: int = 0) -> dict:
    """The manifest's `ood` section for the model in `folder`."""
    manifest = json.loads((folder / "manifest.json").read_text())
    split_seed = manifest["training"]["seed"]
    val_size = manifest["training"]["config"].get("val_size", 5000)
    exit_threshold = float(manifest["exit"]["threshold"])

    full = load_source(data)
    _, val_idx = train_val_split(len(full), val_size, split_seed)
    val = full.subset(val_idx)
    # two halves: thresholds from one, the false-flag rate measured on the other
    fit, check = val.subset(np.arange(0, len(val), 2)), val.subset(np.arange(1, len(val), 2))
    fitted = fit_thresholds(served_heads(folder, fit.images, desc="validation (fit)"), exit_threshold, tpr)

    others = load_source(other)
    _, other_idx = train_val_split(len(others), val_size, split_seed)
    rng = np.random.default_rng(seed)
    sets: dict[str, np.ndarray] = {
        "validation": check.images,
        "other-cifar": others.subset(other_idx).images,
        "photo-crops": photo_crops(count, rng, photos_for(manifest["labels"])),
        "synthetic": synthetic(count, rng),
    }
    rates = {name: flag_rates(served_heads(folder, images, desc=name), fitted, exit_threshold) for name, images in sets.items()}
    return {
        "score": SCORE,
        "rule": RULE,
        "thresholds": fitted["routed"],
        "forcedThresholds": fitted["forced"],
        "calibration": {
            "split": "validation",
            "images": int(len(fit)),
            "truePositiveRate": tpr,
            "wirePrecision": "int8",
            "exitThreshold": exit_threshold,
            "otherCifar": Path(other).name,
            "photos": photos_for(manifest["labels"]),
            "seed": seed,
        },
        "rates": rates,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model folder (edge.onnx, cloud.onnx, manifest.json)")
    ap.add_argument("--data", required=True, help="the model's training source (validation is carved from it)")
    ap.add_argument("--other", required=True, help="the other CIFAR's training source (its validation split is an OOD set)")
    ap.add_argument("--tpr", type=float, default=DEFAULT_TPR, help="share of validation answers left unflagged")
    ap.add_argument("--count", type=int, default=1000, help="images in each generated OOD set")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not 0.5 <= args.tpr < 1.0:
        raise SystemExit(f"--tpr must be in [0.5, 1), got {args.tpr}")
    folder = Path(args.model)
    section = calibrate_ood(folder, args.data, args.other, args.tpr, args.count, args.seed)
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["ood"] = section
    write_json(path, manifest)
    print(json.dumps(section, indent=2))


if __name__ == "__main__":
    main()
