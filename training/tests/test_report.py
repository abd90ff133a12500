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
    commands = [line.strip() for line in page.splitlines() if line.strip().startswith("python -m training.train")]
    names = [c.split("--config training/configs/")[1].split(".json")[0] for c in commands]
    assert names == [b["config"]["name"], "cifar10-w1a1-cut16-ft-cpu", "cifar10-w1a1-cut16-ft2-cpu"]
