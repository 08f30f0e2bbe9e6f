#!/usr/bin/env python3
"""`make deploy`: `sam build` and `sam deploy` for one architecture, the same for both.

`sam deploy --guided` saves its answers (Architecture among them) in samconfig.toml, and a later
plain `sam deploy` reuses them. Building for one architecture and deploying with a saved other
one ships a binary Lambda cannot run, and the deploy still goes green. So every `sam deploy`
here is given `Architecture=<the one just built>`, merged into the overrides saved in
samconfig.toml (which `--parameter-overrides` would otherwise replace, not extend).

    deploy.py --architecture arm64 [--print] [--config samconfig.toml] [--sam path/to/sam]

`--print` shows the commands instead of running them (tested by scripts/check_template.py).
"""

import argparse
import os
import shlex
import subprocess
import sys
import tomllib

ARCHITECTURES = ("arm64", "x86_64")


def saved_deploy_parameters(config_path):
    """[default.deploy.parameters] of samconfig.toml, or {} when there is none."""
    try:
        with open(config_path, "rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        return {}
    return config.get("default", {}).get("deploy", {}).get("parameters", {})


def overrides_with_architecture(saved, architecture):
    """The saved `Key=value` overrides with Architecture set to `architecture`."""
    if isinstance(saved, list):
        pairs = [str(item) for item in saved]
    else:
        pairs = shlex.split(saved or "")
    kept = [pair for pair in pairs if pair.split("=", 1)[0] != "Architecture"]
    return kept + [f"Architecture={architecture}"]


def commands(architecture, config_path, sam):
    saved = saved_deploy_parameters(config_path)
    overrides = overrides_with_architecture(saved.get("parameter_overrides"), architecture)
    build = [sam, "build", "--parameter-overrides", f"Architecture={architecture}"]
    deploy = [sam, "deploy", "--parameter-overrides", *overrides]
    if not saved.get("stack_name"):
        # First deploy: the guided prompts start from these overrides (Architecture included).
        deploy.insert(2, "--guided")
    return [build, deploy]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--architecture", required=True, choices=ARCHITECTURES)
    parser.add_argument("--config", default="samconfig.toml")
    parser.add_argument("--sam", default=os.path.join(os.path.dirname(sys.executable), "sam"))
    parser.add_argument("--print", action="store_true", help="print the commands instead of running them")
    args = parser.parse_args()
    for command in commands(args.architecture, args.config, args.sam):
        print("+ " + shlex.join(command), flush=True)
        if not args.print:
            subprocess.run(command, check=True)


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode)
