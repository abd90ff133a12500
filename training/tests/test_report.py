import json
import shutil
from pathlib import Path

from training.report import model_section

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "cifar10"


def test_a_fine_tune_lists_every_run_behind_it_once(tmp_path):
    """A model fine-tuned in two cycles from the full-precision baseline: the page names the runs
    it started from, counts their epochs, and gives each run's command once, oldest first."""
    folder = tmp_path / "cifar10"
    shutil.copytree(SHIPPED, folder)
    m = json.loads((folder / "manifest.json").read_text())
    t, b = m["training"], m["baseline"]
    fp = {"config": {**t["config"], "name": b["config"]["name"], "weight_bits": 32, "act_bits": 32}, "epochs": 19, "wallSeconds": 600.0}
    cycle1 = {"config": {**t["config"], "name": "cifar10-w1a1-cut16-ft-cpu"}, "epochs": 13, "wallSeconds": 1200.0}
    m["training"] = {**t, "config": {**t["config"], "name": "cifar10-w1a1-cut16-ft2-cpu"}, "epochs": 7, "wallSeconds": 1800.0,
                     "lineage": [fp, cycle1], "totalEpochs": 39}
    (folder / "manifest.json").write_text(json.dumps(m))
    page = model_section(folder, tmp_path / "docs")
    assert f"started from `{b['config']['name']}` (19 epochs, 10 min), then `cifar10-w1a1-cut16-ft-cpu` (13 epochs, 20 min): 39 epochs and 60 min" in page
    commands = [line.strip() for line in page.splitlines() if line.strip().startswith("python -m training train")]
    # a retired preset's run is spelled out key by key (name=...), a current one names its preset
    names = [c.split("--config training/configs/")[1].split(".json")[0] if "--config" in c else c.split(" name=")[1].split()[0]
             for c in commands]
    assert names == [b["config"]["name"], "cifar10-w1a1-cut16-ft-cpu", "cifar10-w1a1-cut16-ft2-cpu"]


def test_targets_are_judged_at_their_limits_and_written_into_the_readme_section(tmp_path):
    from training.report import README_BEGIN, README_END, target_verdicts, write_readme_table

    m = json.loads((SHIPPED / "manifest.json").read_text())
    m["baseline"]["accuracy"] = 0.92
    m["validation"].update(hybridAccuracy=0.91, edgeFraction=0.65, paperEnergyRatio=5.49)
    assert target_verdicts(m) == [(">= 91.0 %", True), ("within 1.0 points of our FP ResNet-32 (-1.00)", True),
                                  (">= 65 % at the edge", True), (">= 5.5x", False)]
    m["validation"]["hybridAccuracy"] = 0.9099
    assert [ok for _, ok in target_verdicts(m)][:2] == [False, False]
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold table\n{README_END}\noutro\n")
    write_readme_table(readme, [m])
    text = readme.read_text()
    assert "old table" not in text and text.startswith(f"intro\n{README_BEGIN}\n| model |") and text.endswith(f"{README_END}\noutro\n")
    assert "| `cifar10` (default) | W1A1, cut after 16 quantized convs |" in text and "90.99 %" in text and ">= 5.5x: **no**" in text
