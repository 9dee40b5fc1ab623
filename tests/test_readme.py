"""README tells the truth: every `edgenn` command line it shows names a real command and real
options, and its inventory and event examples parse. (What each command does is exercised by the
tests of that command: test_convert, test_rnn_convert, test_camera, test_listen, test_flash, ...)"""

import json
import re
import shlex
import tomllib

import pytest

from conftest import REPO, run_cli

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)
COMMAND_LINES = [line.split("|")[-1].strip() for kind, body in BLOCKS if kind == "bash"
                 for line in body.splitlines() if "edgenn " in line and not line.lstrip().startswith("#")]


def test_readme_starts_with_the_two_commands():
    first_block = BLOCKS[0][1]
    assert first_block.splitlines()[0].startswith("make demo") and first_block.splitlines()[1].startswith("make test")
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.parametrize("line", sorted(set(COMMAND_LINES)))
def test_readme_command_uses_real_options(line):
    words = shlex.split(line.split("#")[0])
    words = words[words.index("edgenn") + 1:]
    command = [words[0]] + ([words[1]] if words[0] == "service" else [])
    help_text = run_cli([*command, "--help"])
    assert help_text.returncode == 0, f"`edgenn {' '.join(command)}` does not exist"
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        if option == "--":
            break
        assert option in help_text.stdout, f"{line}: {option} is not an option of `edgenn {command[0]}`"


def test_readme_inventory_and_event_examples_parse(tmp_path):
    from edgenn.flash.inventory import Inventory

    toml_text = next(body for kind, body in BLOCKS if kind == "toml")
    path = tmp_path / "fleet.toml"
    path.write_text(toml_text)
    tomllib.loads(toml_text)
    assert {d.name for d in Inventory.load(path).lookup("cameras")} == {"pi1", "pi2"}
    event = json.loads(next(body for kind, body in BLOCKS if kind == "json"))
    assert {"time", "source", "model", "kind", "label", "score"} <= set(event)
