"""docs/design-space.md from one or more sweep folders: the recommended operating point per
dataset, the table, the plots (copied next to the page) and how the columns are computed."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from ..contracts import WIRE_ELEMENT_BYTES, WIRE_FIXED_HEADER_BYTES, WIRE_SPLIT_RANK
from ..energy import load_constants
from ..onnx_graph import INT8_MAX_BITS
from .point import WIRE_HEADER_BYTES
from .results import PLOTS, load_rows, outputs_stale, plural, reference_accuracy, sorted_rows, write_outputs

def recommend(rows: list[dict], ref: tuple[float, str] | None, tolerance: float) -> tuple[dict, str]:
    """The paper's objective: least edge+cloud energy at the accuracy of the full-precision
    network. Among points whose hybrid accuracy is within ``tolerance`` points of the
    reference, the one with the largest paper-model saving (45 nm saving breaks ties);
    if none qualifies, the most accurate point, said plainly."""
    ref_acc = ref[0] if ref else max(r["finalAccuracy"] for r in rows)
    floor = ref_acc - tolerance / 100
    ok = [r for r in rows if r["hybridAccuracy"] >= floor - 1e-12]
    if not ok:
        best = max(rows, key=lambda r: (r["hybridAccuracy"], r["paperEnergyRatio"]))
        return best, (f"No configuration came within {plural(tolerance, 'point')} of the reference ({100 * ref_acc:.2f} %) in this mode, "
                      f"so this is simply the most accurate one ({100 * (ref_acc - best['hybridAccuracy']):.2f} points under it); "
                      "the energy comparison needs longer training before it means much.")
    best = max(ok, key=lambda r: (r["paperEnergyRatio"], r["opEnergyRatio"]))
    op_rank = 1 + sorted(ok, key=lambda r: -r["opEnergyRatio"]).index(best)
    op_best = max(ok, key=lambda r: r["opEnergyRatio"])
    why = (f"{len(ok)} of {len(rows)} configurations keep the hybrid accuracy within {plural(tolerance, 'point')} of the reference "
           f"({100 * ref_acc:.2f} %); among them this one needs the least modelled energy per inference in the paper model "
           f"({100 / best['paperEnergyRatio']:.1f} % of the FP ResNet-32, {best['paperEnergyRatio']:.2f}x less).")
    if op_rank == 1:
        why += " It is also the cheapest of them in the 45 nm op-level model."
    else:
        why += (f" In the 45 nm op-level model it ranks {op_rank}; the cheapest there is {op_best['name']} "
                f"({op_best['opEnergyRatio']:.2f}x vs {best['opEnergyRatio']:.2f}x), because that model also charges weight reads "
                "and prices a low-bit MAC differently.")
    return best, why


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def markdown_table(rows: list[dict]) -> str:
    head = ("| cut | bits | final | edge exit | hybrid | at edge | edge acc | cloud acc | threshold | edge energy, paper (% FP) "
            "| total, paper (% FP) | saving, paper | edge, 45 nm (µJ) | total, 45 nm (µJ) | saving, 45 nm "
            "| wire fp32 / fp16 / int8 (B) | edge params stored / packed (KiB) | edge.onnx (KiB) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted_rows(rows):
        mark = " ★" if r["shipped"] else ""
        lines.append(
            f"| {r['cut']}{mark} | {r['bits']} | {pct(r['finalAccuracy'])} | {pct(r['exitAccuracy'])} | {pct(r['hybridAccuracy'])} "
            f"| {pct(r['edgeFraction'])} | {pct(r['edgeAccuracy'])} | {pct(r['cloudAccuracy'])} | {r['threshold']:.3f} "
            f"| {100 * r['paperEdge'] / r['paperBaseline']:.1f} | {100 * r['paperTotal'] / r['paperBaseline']:.1f} | {r['paperEnergyRatio']:.2f}x "
            f"| {r['opEdgePj'] / 1e6:.1f} | {r['opTotalPj'] / 1e6:.1f} | {r['opEnergyRatio']:.2f}x "
            f"| {r['wireBytesFp32']} / {r['wireBytesFp16']} / {r['wireBytesInt8']} "
            f"| {r['edgeParamBytesStored'] / 1024:.1f} / {r['edgeParamBytesPacked'] / 1024:.1f} | {r['edgeOnnxBytes'] / 1024:.1f} |")
    return "\n".join(lines)


def epochs_run(rows: list[dict]) -> str:
    """A wall-clock schedule (``time_budget_minutes``) can end before the nominal epochs."""
    done = sorted({r["epochsDone"] for r in rows})
    return str(done[0]) if len(done) == 1 else f"{done[0]}-{done[-1]}"


def dataset_section(out: Path, doc_dir: Path, tolerance: float) -> str:
    """One dataset's part of docs/design-space.md; it links the sweep's own plots (one copy each)."""
    data = json.loads((out / "results.json").read_text())
    rows, recipe = data["rows"], data["recipe"]
    dataset = rows[0]["dataset"]
    ref = reference_accuracy(data)
    best, why = recommend(rows, ref, tolerance)
    plot = {kind: Path(os.path.relpath(out.resolve() / f"{kind}.png", doc_dir.resolve())).as_posix() for kind in PLOTS}
    produced = (f"`{recipe['mode']}` mode, {plural(recipe['epochs'], 'epoch')} per configuration"
                + (f", fine-tuned from `{recipe['init']}`" if recipe.get("init") else ", trained from scratch by the pipeline's recipe")
                + (f" on a seeded {recipe['subset']:.0%} of the training split" if recipe["subset"] < 1 else " on the whole training split")
                + (f", distilled from `{recipe['teacher']}` (weight {recipe['kdWeight']})" if recipe.get("teacher") else "")
                + (f", overrides `{' '.join(recipe['overrides'])}`" if recipe.get("overrides") else "")
                + f"; epochs actually run: {epochs_run(rows)}"
                + f"; validation: {rows[0]['valImages']} seeded images (seed {recipe['seed']}), threshold goal `{recipe['goal']}`"
                + f"; device: {', '.join(data['devices'])}; {data['trainHours']} h of training; commit {', '.join(data['gitShas'])}.")
    shipped = [r for r in rows if r["shipped"]]
    lines = [f"## {dataset} (`{out}`)", "", f"**Produced by:** {produced}", ""]
    if recipe["mode"] == "budget":
        lines += ["> Budget mode: every configuration had only a short fine-tune, so the accuracies are lower bounds and the",
                  "> ranking between bit widths can change with full training. The full mode (`--mode full`, GPU) replaces them.", ""]
    lines += [f"**Recommended operating point:** {best['name']} at threshold {best['threshold']:.3f}: hybrid accuracy "
              f"{pct(best['hybridAccuracy'])} %, {pct(best['edgeFraction'])} % answered at the edge, "
              f"{best['paperEnergyRatio']:.2f}x less energy (paper model), {best['opEnergyRatio']:.2f}x (45 nm model), "
              f"{best['wireBytesInt8']} B on the wire in int8.", "", f"*Why:* {why}",
              f"Reference: {ref[1]}, {pct(ref[0])} %." if ref else "", ""]
    for s in shipped:
        lines += [f"The shipped configuration ({s['name']}, ★) reaches {pct(s['hybridAccuracy'])} % with "
                  f"{pct(s['edgeFraction'])} % at the edge and {s['paperEnergyRatio']:.2f}x (paper) / {s['opEnergyRatio']:.2f}x (45 nm) "
                  f"in this sweep.", ""]
    lines += [markdown_table(rows), "",
              f"![energy vs accuracy]({plot['energy-accuracy']})", "",
              f"![% at edge vs accuracy, and each exit's accuracy]({plot['edge-accuracy']})", "",
              f"![threshold sweeps]({plot['threshold-curves']})", ""]
    return "\n".join(lines)


def models_section() -> str:
    """The energy formulas and constants next to the figures (docs/background.md#the-energy-model), read from the shared file."""
    k = load_constants()
    pj = k["horowitz45nm"]["pj"]
    return "\n".join([
        "## How the columns are computed", "",
        "- *Accuracies* are on the seeded validation slice of the training set (never the official test split). "
        "*final* / *edge exit*: each head on every image; *hybrid*, *at edge*, *edge acc*, *cloud acc*: at the threshold "
        "`calibrate()` chose for the goal (entropy of the exit softmax < threshold exits at the edge).",
        f"- *Paper model* (units of one full-precision MAC, conv MACs only): edge = quantized MACs x b/{k['paper']['fullPrecisionBits']} "
        "+ full-precision edge MACs; total = edge + (1 - edge fraction) x cloud; saving = 69.12 M / total.",
        f"- *45 nm op-level model* (Horowitz, ISSCC 2014): full-precision MAC = {pj['fp32Mult']} + {pj['fp32Add']} pJ; "
        f"2..8-bit MAC = {pj['int8Mult']} + {pj['int32Add']} pJ (int8 mult + int32 add); 1-bit MAC = {pj['int8Add']} pJ; "
        f"plus every weight bit read once from SRAM at {pj['sramRead64Bit']} pJ per 64 bits; FC layers included. "
        "Constants: `shared/energy.json` (the TypeScript side reads the same file).",
        "- Modelled energy is not measured time ([performance.md](performance.md) measures time): the Worker runs quantized "
        "convs as integer convolutions in onnxruntime-web, and W1A1 edges of at most 32 channels as XNOR + popcount, "
        "2-4 bit edges as i8 dot products, in the packed engine.",
        f"- *Wire bytes*: one image's split tensor c x h x w x ({', '.join(str(b) for b in WIRE_ELEMENT_BYTES.values())}) bytes "
        f"plus the {WIRE_HEADER_BYTES}-byte header of `shared/src/wire.ts` ({WIRE_FIXED_HEADER_BYTES} fixed bytes + 4 per "
        f"dimension, rank {WIRE_SPLIT_RANK}).",
        f"- *Edge params stored*: as `edge.onnx` holds them — codes of <= {INT8_MAX_BITS}-bit weights as int8 (1 byte each) plus a "
        "float32 scale and an int8 zero point per filter; 8- and 32-bit weights as float32; the exit FC's weight as int8 "
        "per row (+ float32 scale); all other edge parameters (stem, BN, shortcuts, biases) float32. *packed*: quantized weights at b/8 bytes each (+ float32 scales). "
        "*edge.onnx*: the serialized graph's actual size.", ""])


def write_report(outs: list[Path], doc: Path, tolerance: float = 1.0) -> Path:
    """docs/design-space.md from one or more sweep folders (each with results.json)."""
    for out in outs:
        if not load_rows(out):
            raise SystemExit(f"{out}: no finished configuration yet (results.jsonl is empty or missing)")
        if outputs_stale(out):
            write_outputs(out, load_rows(out))
    sections = [dataset_section(out, doc.parent, tolerance) for out in outs]
    header = ["# Design-space exploration", "",
              "Where to cut the hybrid ResNet-32 and how far to quantize its edge part (issue 5). Every point is one trained "
              "configuration (cut x edge bit width, weights = activations) with its exit threshold calibrated on validation. "
              f"Generated by `python -m training sweep report {' '.join(str(o) for o in outs)} --doc {doc}` on "
              f"{datetime.now(timezone.utc).strftime('%Y-%m-%d')}; recommendation tolerance {plural(tolerance, 'point')}. "
              "Each section says which mode, epochs and machine produced its figures.", ""]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(header + sections + [models_section()]))
    return doc
