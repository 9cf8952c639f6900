"""`python -m mimo_edu`: the parser imports no stage module, and its choices and targets stay in step."""

import json
import subprocess
import sys

import pytest

from mimo_edu import cli

HEAVY = ("torch", "transformers", "peft", "segment_anything", "matplotlib", "nbformat")


def test_help_of_every_command_imports_nothing_heavy():
    code = f"""
import contextlib, io, json, sys
from mimo_edu.cli import COMMANDS, build_parser
for argv in [["--help"]] + [[name, "--help"] for name in COMMANDS]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        build_parser().parse_args(argv)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r} or m.startswith("mimo_edu."))))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["mimo_edu.cli", "mimo_edu.errors"]


def test_choices_repeat_the_registries():
    from mimo_edu.data.schema import TASKS
    from mimo_edu.data.synth import SPLITS
    from mimo_edu.foundations.paths import KINDS
    from mimo_edu.model.config import PRESETS as MODEL_PRESETS
    from mimo_edu.scaling import GPUS
    from mimo_edu.train.config import PRESETS as TRAIN_PRESETS

    assert cli.MODEL_PRESETS == tuple(sorted(MODEL_PRESETS))
    assert cli.TRAIN_PRESETS == tuple(sorted(TRAIN_PRESETS))
    assert cli.SPLITS == tuple(SPLITS)
    assert cli.TASKS == TASKS
    assert cli.FOUNDATIONS == KINDS
    assert cli.GPUS == tuple(GPUS)


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_names_a_function_that_exists(name):
    assert callable(cli.command_function(cli.COMMANDS[name][0]))


def test_a_refused_input_prints_the_error_and_exits_2(capsys):
    assert cli.main(["plan", "--gpus", "0"]) == 2
    assert "error: plan: --gpus 0" in capsys.readouterr().err


def test_task_mix_reaches_the_training_config():
    from mimo_edu.train.cli import train_config

    def config(*extra: str):
        return train_config(cli.build_parser().parse_args(["train", "--out", "runs/x", *extra]))

    assert config().task_mix == ("seg", "perception", "qa_seg", "prompt_qa")
    assert config("--task-mix", "seg", "prompt_qa", "prompt_qa").task_mix == ("seg", "prompt_qa", "prompt_qa")
    with pytest.raises(SystemExit):
        config("--task-mix", "vqa")
