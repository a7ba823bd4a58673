"""One table of defaults: `loops.SimConfig()`, `loops.simulate` and `audit simulate` resolve to the
same configuration, and the README's Python example gives the CLI's verdict."""

from __future__ import annotations

import json

from click.testing import CliRunner

import loops
from loops.cli import simulate as simulate_command
from loops.config import MODEL_DEFAULTS, SCENARIO_BIAS, SimConfig, resolve, scenario


def test_simconfig_and_the_scenario_resolve_alike():
    assert resolve(SimConfig())[0] == resolve(scenario())[0]
    assert resolve(SimConfig())[0].bias == SCENARIO_BIAS == MODEL_DEFAULTS["gaussian"]["bias"]
    assert resolve(SimConfig(model="gmm"))[0].bias == SCENARIO_BIAS
    assert resolve(SimConfig(bias=1.0))[0].bias == 1.0


def test_the_readme_example_gives_the_cli_verdict(tmp_path):
    """README: `loops.simulate(cfg, baseline=True).summary["verdict"]` works "as the CLI"."""
    api = loops.simulate(loops.SimConfig(loop="fresh", contamination=0.4, filter="watermark"), baseline=True)
    result = CliRunner().invoke(
        simulate_command,
        [
            "--contamination",
            "0.4",
            "--filter",
            "watermark",
            "--format",
            "json",
            "--quiet",
            "--out",
            str(tmp_path / "sim"),
        ],
    )
    assert result.exit_code == 0, result.output
    cli = json.loads(result.stdout)
    assert api.summary["verdict"] == cli["verdict"]
    assert "recovers -" not in api.summary["verdict"]  # the filter helps in the stated scenario
    assert api.summary["configs"] == cli["configs"]
