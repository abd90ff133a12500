"""`python -m training <command>` (training/__main__.py): one command per module with a main(),
each handed its own arguments, and the `python -m training.<module>` form kept."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from training import __main__ as cli

PACKAGE = Path(__file__).resolve().parents[1]


def test_every_module_with_a_main_is_a_command():
    with_main = set()
    for path in PACKAGE.rglob("*.py"):
        if "tests" in path.parts or path.name == "__main__.py":
            continue
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body):
            with_main.add(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    assert with_main == {module for module, _ in cli.COMMANDS.values()}


def test_help_lists_every_command_on_one_line(capsys):
    cli.main(["--help"])
    out = capsys.readouterr().out
    for name, (_, summary) in cli.COMMANDS.items():
        assert f"  {name.ljust(max(map(len, cli.COMMANDS)) + 2)}{summary}\n" in out


def test_a_command_runs_its_module_main_with_the_rest_of_the_line(monkeypatch):
    from training import evaluate

    seen = []
    monkeypatch.setattr(evaluate, "main", lambda argv: seen.append((sys.argv[0], argv)))
    monkeypatch.setattr(sys, "argv", ["training/__main__.py"])
    cli.main(["evaluate", "--model", "m", "--images", "x=1"])
    assert seen == [("python -m training evaluate", ["--model", "m", "--images", "x=1"])]


def test_unknown_or_missing_command_is_a_usage_error(capsys):
    for argv in ([], ["evalute"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
    assert "did you mean 'evaluate'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,prog", [(["-m", "training", "sweep", "report", "--help"], "python -m training sweep report"),
                                       (["-m", "training.sweep", "report", "--help"], "python -m training.sweep report"),
                                       (["-m", "training.pack", "--help"], "pack.py")])
def test_both_forms_reach_the_command_options(argv, prog):
    out = subprocess.run([sys.executable, *argv], cwd=PACKAGE.parent, capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"usage: {prog} ") and "--help" in out
