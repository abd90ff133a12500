"""Design-space exploration (issue 5): train one hybrid per (cut, edge bit width), calibrate its
exit on validation, and tabulate accuracy, energy, wire and parameter bytes (``cli.py`` has the
commands). One module per job:

- ``grid``: the points to train and each one's training config (budget fine-tune or full recipe);
- ``point``: the figures of one finished point;
- ``runner``: the resumable run over the grid, one recipe per sweep folder;
- ``results``: results.jsonl and the tables drawn from it;
- ``plots``: the three plots of a sweep folder;
- ``report``: docs/design-space.md from sweep folders;
- ``cli``: ``python -m training sweep run|report`` (also ``python -m training.sweep``).
"""
from .cli import main, spec_from_args
from .grid import BUDGET_RECIPE, SHIPPED, SweepSpec, plan_points, point_name, train_config, training_finished
from .plots import pareto_front
from .point import WIRE_HEADER_BYTES, edge_param_bytes, measure, wire_bytes
from .report import recommend, write_report
from .results import CSV_COLUMNS, PLOTS, load_rows, write_outputs
from .runner import run_sweep

__all__ = [
    "BUDGET_RECIPE", "CSV_COLUMNS", "PLOTS", "SHIPPED", "SweepSpec", "WIRE_HEADER_BYTES", "edge_param_bytes", "load_rows",
    "main", "measure", "pareto_front", "plan_points", "point_name", "recommend", "run_sweep", "spec_from_args",
    "train_config", "training_finished", "wire_bytes", "write_outputs", "write_report",
]
