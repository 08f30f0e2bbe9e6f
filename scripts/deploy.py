#!/usr/bin/env python3
"""`make deploy`: `sam build` and `sam deploy` for one architecture, the same for both.

`sam deploy --guided` saves its answers (Architecture among them) in samconfig.toml, and a later
plain `sam deploy` reuses them. Building for one architecture and deploying with a saved other
one ships a binary Lambda cannot run, and the deploy still goes green. So every `sam deploy`
here is given `Architecture=<the one just built>`, merged into the overrides saved in
samconfig.toml (which `--parameter-overrides` would otherwise replace, not extend).

The saved overrides are read and written back with SAM CLI's own code (its samconfig reader,
its `--parameter-overrides` parser and the quoting `sam deploy --guided` saves with), so every
value comes back as SAM saved it: empty ones, and ones with spaces or quotes, included.

    deploy.py --architecture arm64 [--config-env default] [--print] [--config samconfig.toml] [--sam path/to/sam]

`--print` shows the commands instead of running them (tested by scripts/check_template.py with
SAM CLI's own command-line parser).
"""

import argparse
import os
import shlex
import subprocess
import sys

from samcli.cli.types import CfnParameterOverridesType
from samcli.commands.deploy.guided_config import GuidedConfig
from samcli.lib.config.samconfig import SamConfig

ARCHITECTURES = ("arm64", "x86_64")


def saved_deploy_parameters(config_path, config_env="default"):
    """The `deploy` parameters samconfig.toml holds for `config_env`, read as SAM reads them."""
    directory, filename = os.path.split(os.path.abspath(config_path))
    config = SamConfig(directory, filename=filename)
    if not config.exists():
        return {}
    return config.get_all(["deploy"], "parameters", env=config_env)


def overrides_with_architecture(saved, architecture):
    """The saved overrides with Architecture set to `architecture`, as one `--parameter-overrides`
    value in the form `sam deploy --guided` saves (`Key="value" ...`)."""
    overrides = CfnParameterOverridesType().convert(saved, None, None) if saved else {}
    overrides.pop("Architecture", None)
    overrides["Architecture"] = architecture
    return " ".join(f"{key}={GuidedConfig.quote_parameter_values(value)}" for key, value in overrides.items())


def commands(architecture, config_path, sam, config_env="default"):
    saved = saved_deploy_parameters(config_path, config_env)
    overrides = overrides_with_architecture(saved.get("parameter_overrides"), architecture)
    environment = ["--config-file", os.path.abspath(config_path), "--config-env", config_env]
    build = [sam, "build", "--parameter-overrides", f"Architecture={architecture}"]
    deploy = [sam, "deploy", *environment, "--parameter-overrides", overrides]
    if not saved.get("stack_name"):
        # First deploy: the guided prompts start from these overrides (Architecture included).
        deploy.insert(2, "--guided")
    return [build, deploy]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--architecture", required=True, choices=ARCHITECTURES)
    parser.add_argument("--config", default="samconfig.toml")
    parser.add_argument("--config-env", default="default")
    parser.add_argument("--sam", default=os.path.join(os.path.dirname(sys.executable), "sam"))
    parser.add_argument("--print", action="store_true", help="print the commands instead of running them")
    args = parser.parse_args()
    for command in commands(args.architecture, args.config, args.sam, args.config_env):
        print("+ " + shlex.join(command), flush=True)
        if not args.print:
            subprocess.run(command, check=True)


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode)
