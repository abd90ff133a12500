"""Write docs/results.md from the shipped model folders (manifest.json + calibration.json):
every figure in that page comes from these files, and the page names the commands that made them.

    python -m training report [--models models] [--out docs/results.md]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path

from .config import TrainConfig
from .energy import load_constants

REFERENCE_FP = {"cifar10": "92.8 %", "cifar100": "68.7 %"}  # public ResNet-32 checkpoints (chenyaofo/pytorch-cifar-models and others)


# Issue 4's targets, judged on the validation figures in each manifest: our accuracy and the
# distance to the full-precision teacher; the edge share and the energy factor at least the
# paper's operating point (shared/energy.json "paperOperatingPoints", not restated here)
_PAPER = load_constants()["paperOperatingPoints"]
TARGET_LIMITS = {
    ds: {"accuracy": accuracy, "within": within, "edge": _PAPER[ds]["edgePercent"] / 100, "energy": _PAPER[ds]["energyRatio"]}
    for ds, (accuracy, within) in {"cifar10": (0.91, 0.010), "cifar100": (0.67, 0.015)}.items()
}


def target_verdicts(m: dict) -> list[tuple[str, bool]]:
    """[(target, met?)] for a manifest."""
    lim, v, b = TARGET_LIMITS.get(m["dataset"]), m["validation"] or {}, m.get("baseline")
    if not lim or v.get("hybridAccuracy") is None:
        return []
    acc = v["hybridAccuracy"]
    out = [(f">= {100 * lim['accuracy']:.1f} %", acc >= lim["accuracy"])]
    if b:
        out.append((f"within {100 * lim['within']:.1f} points of our FP ResNet-32 ({100 * (acc - b['accuracy']):+.2f})",
                    acc >= b["accuracy"] - lim["within"] - 1e-9))
    out.append((f">= {100 * lim['edge']:.0f} % at the edge", v["edgeFraction"] >= lim["edge"]))
    out.append((f">= {lim['energy']}x", v.get("paperEnergyRatio", 0) >= lim["energy"]))
    return out


def target_text(dataset: str) -> str:
    lim = TARGET_LIMITS.get(dataset)
    if not lim:
        return "n/a"
    return (f"hybrid >= {100 * lim['accuracy']:.1f} % and within {100 * lim['within']:.1f} points of our FP ResNet-32; "
            f">= {100 * lim['edge']:.0f} % at the edge; >= {lim['energy']}x (paper model)")


def training_summary(t: dict) -> str:
    """How a shipped model was trained, in a table cell: the runs behind it and their epochs."""
    runs = [*(t.get("lineage") or []), t]
    minutes = sum(r["wallSeconds"] for r in runs) / 60
    kd = " with distillation" if t["config"].get("kd_weight", 0) > 0 else ""
    if len(runs) == 1:
        start = f"initialised from `{t['config']['init_from']}`{kd}" if t["config"].get("init_from") else "from scratch"
        return f"{start}, {t['epochs']} epochs, {minutes:.0f} min"
    first = runs[0]["config"]
    start = "our FP ResNet-32" if first["weight_bits"] >= 32 and first["act_bits"] >= 32 else f"`{first['name']}`"
    cycles = " + ".join(str(r["epochs"]) for r in runs[1:])
    return (f"fine-tuned{kd} from {start} ({runs[0]['epochs']} epochs): {cycles} epochs; "
            f"{sum(r['epochs'] for r in runs)} epochs, {minutes / 60:.1f} h in all")


def readme_table(manifests: list[dict]) -> str:
    rows = ["| model | edge | training | FP ResNet-32 (ours) | hybrid accuracy | at the edge | energy saving (paper model) | issue 4 targets met |",
            "|---|---|---|---|---|---|---|---|"]
    for m in manifests:
        v, a, b = m["validation"] or {}, m["architecture"], m.get("baseline")
        name = f"`{m['name']}`" + (" (default)" if m["name"] == "cifar10" else "")
        verdicts = target_verdicts(m)
        met = "; ".join(f"{t}: {'yes' if ok else '**no**'}" for t, ok in verdicts) or "-"
        fp = f"{pct(b['accuracy'])} ({b['epochs']} epochs)" if b else "n/a"
        rows.append(f"| {name} | W{a['weightBits']}A{a['activationBits']}, cut after {a['cut']} quantized convs | "
                    f"{training_summary(m['training'])} | {fp} | "
                    f"{pct(v.get('hybridAccuracy'))} | {pct(v.get('edgeFraction'))} | {v.get('paperEnergyRatio', 0):.2f}x | {met} |")
    return "\n".join(rows)


def ood_table(manifests: list[dict]) -> str:
    """The out-of-distribution flag's measured rates per model (manifest `ood`, training/ood.py)."""
    rows = ["| model | images | validation (held-out half) | other CIFAR (validation split) | scikit-image photo crops | synthetic (noise, solid, gradients, checkerboards) |",
            "|---|---|---|---|---|---|"]
    for m in manifests:
        o = m.get("ood")
        if not o:
            continue
        r = o["rates"]
        cells = [f"{pct(r[k]['flagged'])} of {r[k]['images']}" for k in ("validation", "other-cifar", "photo-crops", "synthetic")]
        rows.append(f"| `{m['name']}` | flagged | {' | '.join(cells)} |")
        at = [f"edge {pct(r[k]['flaggedAtEdge'])} / cloud {pct(r[k]['flaggedAtCloud'])}" for k in ("validation", "other-cifar", "photo-crops", "synthetic")]
        rows.append(f"| | flagged among edge / cloud answers | {' | '.join(at)} |")
        share = [pct(r[k]["edgeShare"]) for k in ("validation", "other-cifar", "photo-crops", "synthetic")]
        rows.append(f"| | answered at the edge | {' | '.join(share)} |")
        forced = [f"edge {pct(r[k]['forcedEdge'])} / cloud {pct(r[k]['forcedCloud'])}" for k in ("validation", "other-cifar", "photo-crops", "synthetic")]
        rows.append(f"| | flagged with exit=edge / exit=cloud | {' | '.join(forced)} |")
        t, f = o["thresholds"], o["forcedThresholds"]
        rows.append(f"| | thresholds (free energy) | exit=auto: edge {t['edge']:.3f}, cloud {t['cloud']:.3f}; forced: edge {f['edge']:.3f}, cloud {f['cloud']:.3f}; "
                    f"fitted for {pct(o['calibration']['truePositiveRate'])} unflagged on {o['calibration']['images']} validation images | | | |")
    return "\n".join(rows)


README_BEGIN = "<!-- models:begin (written by python -m training report; do not edit by hand) -->"
README_END = "<!-- models:end -->"
OOD_BEGIN = "<!-- ood:begin (written by python -m training report; do not edit by hand) -->"
OOD_END = "<!-- ood:end -->"


def write_between(path: Path, begin: str, end: str, body: str) -> None:
    """Replace what lies between the `begin` and `end` markers of `path` with `body`."""
    text = path.read_text()
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise SystemExit(f"{path}: no {begin} ... {end} section to write")
    path.write_text(f"{text[: i + len(begin)]}\n{body}\n{text[j:]}")


def write_readme_table(readme: Path, manifests: list[dict]) -> None:
    write_between(readme, README_BEGIN, README_END, readme_table(manifests))


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


def override(key: str, value: object) -> str:
    """A config value as the command line takes it (config.parse_value): lists comma-separated."""
    return shlex.quote(f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}")


def train_command(training: dict) -> str:
    """The command that reproduces a run: its preset plus what differed, or, for a run whose
    preset has since been retired (the per-cycle fine-tunes), every setting spelled out."""
    cfg = training["config"]
    preset = Path("training/configs") / f"{cfg['name']}.json"
    if preset.exists():
        defaults = TrainConfig.from_json(preset).to_dict()
        overrides = [override(k, v) for k, v in cfg.items() if defaults.get(k) != v and k not in ("out_dir",)]
        return f"python -m training train --config {preset} " + " ".join(overrides)
    return "python -m training train " + " ".join(override(k, v) for k, v in cfg.items())


def has_preset(training: dict) -> bool:
    return (Path("training/configs") / f"{training['config']['name']}.json").exists()


def finished_checkpoint(training: dict) -> str:
    """Where a run's checkpoint for export lies: a preset's run ends with its slim model.pt
    (BatchNorm statistics recomputed, the better of raw and EMA); a retired one's resume file."""
    cfg = training["config"]
    return f"{cfg.get('out_dir', 'runs')}/{cfg['name']}/model.pt" if has_preset(training) else f"runs/{cfg['name']}/checkpoint.pt"


def train_and_keep(training: dict) -> str:
    """A run that a later one starts from (init_from / teacher / baseline): trained, then (a
    retired per-cycle run) kept as the checkpoints/<name>.pt its successor named; a preset's run
    needs no keep, the later presets name its model.pt."""
    keep = "" if has_preset(training) else f"    python -m training keep runs/{training['config']['name']}\n"
    return f"    {train_command(training)}\n{keep}"


def model_section(folder: Path, docs: Path) -> str:
    m = json.loads((folder / "manifest.json").read_text())
    v, t, a = m["validation"] or {}, m["training"], m["architecture"]
    paper = load_constants()["paperOperatingPoints"].get(m["dataset"])
    # the model's own plot (one copy), linked from docs/
    img = Path(os.path.relpath(folder.resolve() / "calibration.png", docs.resolve())).as_posix()
    log_epochs = t.get("epochs")
    b = m.get("baseline")
    before = t.get("lineage") or []  # the runs this one started from, oldest first
    started_from = ""
    if before:
        chain = ", then ".join(f"`{r['config']['name']}` ({r['epochs']} epochs, {r['wallSeconds'] / 60:.0f} min)" for r in before)
        total_min = (t["wallSeconds"] + sum(r["wallSeconds"] for r in before)) / 60
        started_from = f" It started from {chain}: {t.get('totalEpochs')} epochs and {total_min:.0f} min of training in all."
    rows = [
        *([(f"our full-precision ResNet-32 ({b['epochs']} epochs, same split)", pct(b["accuracy"]), "0 %", "1.00x", "1.00x")] if b else []),
        ("final exit only (full-precision tail)", pct(v.get("finalAccuracy")), "0 %", "-", "-"),
        ("edge exit only", pct(v.get("exitAccuracy")), "100 %", "-", "-"),
        (f"**hybrid, threshold {m['exit']['threshold']:.4f}**", f"**{pct(v.get('hybridAccuracy'))}**",
         f"**{pct(v.get('edgeFraction'))}**", f"**{v.get('paperEnergyRatio', 0):.2f}x**", f"{v.get('opEnergyRatio', 0):.2f}x"),
    ]
    if paper:
        rows.append((f"paper (Long et al. 2020), cut {paper['cut']}, {paper['bits']}-bit edge", "not reported",
                     f"{paper['edgePercent']} %", f"{paper['energyRatio']}x ({paper['arithmetic']}x by the paper model above at its edge share)", "-"))
    table = "\n".join(f"| {' | '.join(r)} |" for r in rows)
    if b and v.get("hybridAccuracy") is not None:
        versus = (f"Hybrid vs our full-precision ResNet-32: {100 * (v['hybridAccuracy'] - b['accuracy']):+.2f} points "
                  f"(baseline trained {b['epochs']} epochs on {b['device']} in {b['wallSeconds'] / 60:.0f} min, seed {b['seed']}, git {b['gitSha']}; "
                  f"published reference {REFERENCE_FP.get(m['dataset'], 'n/a')}).")
        baseline_cmds = train_and_keep(b)
        before = [r for r in before if r["config"]["name"] != b["config"]["name"]]  # listed once
        export_extra = f" --baseline {b['checkpoint']}"
    else:
        versus = f"No full-precision baseline trained by this pipeline yet for {m['dataset']} (published reference {REFERENCE_FP.get(m['dataset'], 'n/a')})."
        baseline_cmds, export_extra = "", ""
    return f"""## {m['name']} ({m['dataset']}): W{a['weightBits']}A{a['activationBits']} edge, cut after {a['cut']} quantized convs

Model `{m['version']}`, fingerprint `{m['fingerprint'][:16]}`. Trained {log_epochs} epochs on
{t['device']} in {t['wallSeconds'] / 60:.0f} min (seed {t['seed']}, git {t['gitSha']}).{started_from} Validation: {v.get('images', 0)} images
carved from the training set (seed {t['seed']}); the threshold was chosen on them for the goal
`{(m['exit'].get('calibration') or {}).get('goal', 'n/a')}`.

| | accuracy | answered at the edge | energy saving, paper model | energy saving, 45 nm op model |
|---|---|---|---|---|
{table}

Accuracy of the answers given at the edge: {pct(v.get('edgeAccuracy'))}; given by the cloud: {pct(v.get('cloudAccuracy'))}.
{versus}
Target (issue 4): {target_text(m['dataset'])}.
Met: {'; '.join(f"{t}: {'yes' if ok else 'no'}" for t, ok in target_verdicts(m)) or 'n/a'}.

![threshold curve]({img})

Reproduce{" (full-precision baseline first)" if b else ""}:

{baseline_cmds}{"".join(train_and_keep(r) for r in before)}    {train_command(t)}
    python -m training export --checkpoint {finished_checkpoint(t)} --out models/{m['name']} --name {m['name']} --data {shlex.quote(t['config']['data'])} --goal {(m['exit'].get('calibration') or {}).get('goal', 'within=1.0')}{export_extra}
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="models")
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--readme", default="README.md", help="also writes the models table between its models:begin/end markers ('' to skip)")
    ap.add_argument("--ood-doc", default="docs/ood.md", help="also writes the OOD rates table between its ood:begin/end markers ('' to skip)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    folders = sorted(p.parent for p in Path(args.models).glob("*/manifest.json"))
    sections = [model_section(f, out.parent) for f in folders if json.loads((f / "manifest.json").read_text())["validation"]]
    k = load_constants()
    manifests = [json.loads((f / "manifest.json").read_text()) for f in folders]
    shipped = {m["dataset"] for m in manifests}
    with_baseline = {m["dataset"] for m in manifests if m.get("baseline")}
    out.write_text(f"""# Results

Generated by `python -m training report` from the shipped `models/*/manifest.json` and
`calibration.json`; every figure below is a validation figure (5,000 images carved from the
training set). The official test splits are held back; run them through the API or
`python -m training evaluate --model models/NAME --images DIR`.

Energy: "paper model" = the paper's computational-energy arithmetic (a b-bit MAC costs b/32 of a
full-precision one; conv MACs only; the edge is paid by every request, the tail only by requests
that reach the cloud; baseline = full-precision ResNet-32, 69.12 M MACs). "45 nm op model" =
Horowitz (ISSCC 2014) operation energies plus SRAM weight reads. Constants and formulas:
`shared/energy.json` ({k['horowitz45nm']['pj']['fp32Mult']} pJ fp32 mult, {k['horowitz45nm']['pj']['fp32Add']} pJ fp32 add, ...),
implemented once per language in `training/energy.py` and `workers/src/infer/energy.ts`. Modelled energy,
not measured: onnxruntime has no XNOR/popcount kernels.

{chr(10).join(sections) if sections else 'No trained model has been shipped yet.'}
## How the shipped models are trained

One recipe per network (training/README.md, "Train: one recipe per shipped network"): the
full-precision teachers `cifar10-fp32` and `cifar100-fp32` (150 epochs), then the hybrids
`cifar10-w1a1-cut16` and `cifar100-w4a4-cut24` (100 epochs each, from and distilled from their
teacher, BatchNorm statistics recomputed at the end). They ran as a campaign across sessions
(`python -m training campaign status`, or the committed `campaign/*/status.txt`). Reproducing a
model is two commands, then the export above:

    python -m training train --config training/configs/cifar10-fp32.json
    python -m training train --config training/configs/cifar10-w1a1-cut16.json

## Not yet shipped

{chr(10).join(f"- {d}: no trained model in `models/` yet." for d in ("cifar10", "cifar100") if d not in shipped)}
{chr(10).join(f"- {d}: no full-precision ResNet-32 baseline trained by this pipeline yet (published reference {REFERENCE_FP[d]}); "
              "the hybrid is compared with its own full-precision final exit." for d in ("cifar10", "cifar100") if d not in with_baseline) or "- Nothing: every dataset has a shipped hybrid and its full-precision baseline."}
""")
    print(out)
    if args.readme:
        write_readme_table(Path(args.readme), [m for m in manifests if m["validation"]])
    if args.ood_doc:
        write_between(Path(args.ood_doc), OOD_BEGIN, OOD_END, ood_table(manifests))
        print(args.readme)


if __name__ == "__main__":
    main()
