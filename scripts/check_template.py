#!/usr/bin/env python3
"""Checks on what `template.yaml` deploys, beyond cfn-lint and `sam validate`: the promises the
README makes about the stack, for every case of the parameter matrix in template_cases.py, and
the command lines of `make deploy`. Part of `make test` and `make lint`.

(`tests/template.rs` runs the function's own configuration parser and metrics over the same
cases.)
"""

import itertools
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy  # noqa: E402
import template_cases  # noqa: E402
from template_cases import ACCOUNT, REGION, Refused, resolve, source  # noqa: E402

NAMING_PROPERTIES = {"Name", "FunctionName", "RoleName", "LogGroupName", "StateMachineName", "AlarmName", "DashboardName"}
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def expect_refused(parameters, because):
    try:
        resolve(parameters)
    except Refused as refused:
        check(because in str(refused), f"refused for the wrong reason: {refused} (wanted {because!r})")
    else:
        failures.append(f"{parameters} should be refused before deploying ({because})")


def check_case(case):
    label = case["name"]
    if case["refused"]:
        return
    env = case["environment"]
    check("MOMENTO_SIGNING_SECRET" not in env, f"{label}: the secret itself must not be in the environment")
    secret_arn = env.get("MOMENTO_SIGNING_SECRET_ID", "")
    check(secret_arn.startswith("arn:aws:secretsmanager:"), f"{label}: MOMENTO_SIGNING_SECRET_ID must be a secret's ARN: {secret_arn!r}")
    given = case["parameters"]["ExistingSigningSecretArn"]
    check(not given or secret_arn == given, f"{label}: the existing secret must be used as given")
    check(env.get("DEAD_LETTER_QUEUE_URL", "").endswith("/" + case["queue_name"]), f"{label}: DEAD_LETTER_QUEUE_URL must be the queue")

    # The FIFO queue's name is valid for any stack name (SQS: 80 characters, .fifo included).
    queue = case["queue_name"]
    check(len(queue) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+\.fifo", queue), f"{label}: queue name {queue!r} ({len(queue)} characters) is invalid")
    check({"DeadLetterQueue", "FunctionLogGroup"} <= set(case["retained"]), f"{label}: the dead-letter queue and the log group must be retained: {case['retained']}")

    # Least privilege, on exactly the resources used.
    statements = case["statements"]
    for statement in statements:
        for resource in statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]:
            check(resource != "*" and not resource.endswith(":*"), f"{label}: {statement['Action']} is granted on {resource!r}")
    starts = [s for s in statements if "states:StartExecution" in json.dumps(s["Action"])]
    routes = json.loads(env["ROUTES"]) if "ROUTES" in env else []
    machines = [r["target"]["state_machine_arn"] for r in routes if "state_machine_arn" in r["target"]]
    if machines:
        check(len(starts) == 1, f"{label}: one StartExecution statement expected: {starts}")
        resource = starts[0]["Resource"] if starts else None
        machine_account = machines[0].split(":")[4]
        if machine_account == ACCOUNT:
            check(resource == machines[0], f"{label}: StartExecution must be granted on the ARN given ({machines[0]}), not {resource!r}")
        else:
            # IAM refuses a resource that is not an ARN, so such a stack fails to deploy, with
            # this sentence in the error, instead of deploying green and failing every start.
            check(isinstance(resource, str) and not resource.startswith("arn:") and "another account" in resource,
                  f"{label}: a state machine in another account must fail the deploy: {resource!r}")
    else:
        check(not starts, f"{label}: StartExecution granted without a state machine route")

    # Alarms on everything that loses events, each telling someone when a topic is set.
    watched = {(a["namespace"], a["metric"], a["dimensions"].get("Reason")) for a in case["alarms"]}
    namespace = case["parameters"]["MetricsNamespace"]
    for wanted in [("AWS/Lambda", "Url5xxCount", None), ("AWS/Lambda", "Throttles", None), ("AWS/Lambda", "Errors", None),
                   ("AWS/SQS", "NumberOfMessagesSent", None), (namespace, "Rejected", "invalid_signature"),
                   (namespace, "DeadLettered", None), (namespace, "Lost", None)]:
        check(wanted in watched, f"{label}: no alarm on {wanted}")
    topic = case["parameters"]["AlarmTopicArn"]
    for name, actions in case["alarm_actions"].items():
        check(actions == ([topic] if topic else []), f"{label}: alarm {name} notifies {actions}")
    for alarm in case["alarms"]:
        check(alarm["dimensions"].get("FunctionName", case["function_name"]) == case["function_name"],
              f"{label}: alarm {alarm['name']} watches another function")
    check(case["tracing"] == case["parameters"]["Tracing"], f"{label}: Tracing {case['tracing']} is not the parameter's")
    reserved = int(case["parameters"]["ReservedConcurrency"])
    got = case["reserved_concurrency"]
    check((int(got) if got is not None else None) == (reserved or None), f"{label}: reserved concurrency {got!r}")


def check_expanded_defaults():
    label = "template.yaml"
    template = source()
    check(template["Parameters"]["MomentoSigningSecret"].get("NoEcho") is True, f"{label}: the signing secret parameter must be NoEcho")
    check(int(template["Parameters"]["ReservedConcurrency"]["Default"]) >= 21,
          f"{label}: the default reservation must cover 5 deliveries/s x 4.2 s")
    stack = resolve({"MomentoSigningSecret": "s"})
    function = stack.resolved("WebhookFunction")["Properties"]
    check(function["Runtime"] == "provided.al2023" and function["Handler"] == "bootstrap", f"{label}: provided.al2023 + bootstrap")
    check(function["Architectures"] == ["arm64"], f"{label}: arm64 by default")
    check(function.get("LoggingConfig", {}).get("LogFormat") == "JSON", f"{label}: JSON logs")
    urls = stack.of_type("AWS::Lambda::Url")
    check(len(urls) == 1 and list(urls.values())[0]["Properties"]["AuthType"] == "NONE", f"{label}: one Function URL with AuthType NONE")
    actions = {(p["Properties"]["Action"], p["Properties"].get("FunctionUrlAuthType"), p["Properties"].get("InvokedViaFunctionUrl"))
               for p in stack.of_type("AWS::Lambda::Permission").values()}
    check(("lambda:InvokeFunctionUrl", "NONE", None) in actions, f"{label}: lambda:InvokeFunctionUrl permission missing: {actions}")
    check(("lambda:InvokeFunction", None, True) in actions, f"{label}: lambda:InvokeFunction (InvokedViaFunctionUrl) permission missing: {actions}")
    for name, resource in stack.resources.items():
        for prop in NAMING_PROPERTIES & set(resource.get("Properties", {})):
            check(not isinstance(resource["Properties"][prop], str), f"{label}: {name}.{prop} is hard-coded")
    queue = stack.resolved("DeadLetterQueue")["Properties"]
    check(queue.get("FifoQueue") is True and queue.get("SqsManagedSseEnabled") is True and queue.get("MessageRetentionPeriod"),
          f"{label}: dead-letter queue must be FIFO, encrypted, with retention set")
    text = json.dumps(stack.template)
    for name, resource in stack.template["Resources"].items():
        if resource["Type"] in ("AWS::CloudWatch::Alarm", "AWS::Lambda::Permission", "AWS::Lambda::Url", "AWS::CloudWatch::Dashboard"):
            continue
        check(re.search(r'"Ref": "%s"|"%s\.|\["%s",|\$\{%s[.}]' % ((re.escape(name),) * 4), text), f"{label}: resource {name} is not used")
    # The name CloudFormation would generate without QueueName: too long for longer stacks.
    generated = template_cases.Stack({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}}}},
                                     {}, "s" * 70).attribute("Q", "QueueName")
    check(len(generated) > 80, "the generated-name model no longer shows the problem QueueName solves")


def check_deploy_commands():
    """Every `sam deploy` carries the architecture `sam build` used, whatever samconfig saved."""
    out = subprocess.run(["make", "-n", "deploy", "ARCH=x86_64"], capture_output=True, text=True, check=True).stdout
    check("scripts/deploy.py --architecture x86_64" in out, f"make deploy must go through scripts/deploy.py: {out}")
    cases = [
        ("", "arm64", True, []),
        ('stack_name = "hooks"\nparameter_overrides = "Architecture=\\"arm64\\" EventBusName=\\"my bus\\""\n', "x86_64", False, ["EventBusName=my bus"]),
        ('stack_name = "hooks"\nparameter_overrides = ["Architecture=x86_64", "CreateEventBus=true"]\n', "arm64", False, ["CreateEventBus=true"]),
    ]
    for saved, architecture, guided, kept in cases:
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(f"version = 0.1\n[default.deploy.parameters]\n{saved}")
        build, deploy_command = deploy.commands(architecture, f.name, "sam")
        os.unlink(f.name)
        check(build[:2] == ["sam", "build"] and f"Architecture={architecture}" in build, f"build: {build}")
        check(("--guided" in deploy_command) == guided, f"deploy guided={guided}: {deploy_command}")
        archs = [a for a in deploy_command if a.startswith("Architecture=")]
        check(archs == [f"Architecture={architecture}"], f"deploy must pass exactly Architecture={architecture}: {deploy_command}")
        for pair in kept:
            check(pair in deploy_command, f"deploy must keep the saved {pair!r}: {deploy_command}")


def readme_table(heading):
    """The rows of the first table after `heading` in the README, cells trimmed."""
    text = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    after = text.split(f"\n{heading}\n", 1)[1].splitlines()
    lines = [line for line in itertools.takewhile(lambda l: l.startswith("|"),
                                                 itertools.dropwhile(lambda l: not l.startswith("|"), after))]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def check_readme_alarms(alarms):
    """The README's alarm table names every alarm the template creates, no other, with the metric it watches."""
    documented = {row[0].strip("`"): row[1] for row in readme_table("### Alarms")}
    check(set(documented) == set(alarms), f"README alarms {sorted(documented)} vs template {sorted(alarms)}")
    for name, metric in alarms.items():
        check(f"`{metric}`" in documented.get(name, ""), f"README: {name} should say it watches `{metric}`")


def main():
    check_expanded_defaults()
    check_deploy_commands()
    expect_refused({}, "Set MomentoSigningSecret")
    expect_refused({"StateMachineTopicPattern": "a\tb", "MomentoSigningSecret": "s"}, "AllowedPattern")
    expect_refused({"StateMachineCachePattern": "**", "MomentoSigningSecret": "s"}, "AllowedPattern")
    count = 0
    alarms = {}
    for case in template_cases.cases():
        described = template_cases.describe(*case)
        check_case(described)
        alarms.update({a["name"]: a["metric"] for a in described.get("alarms", [])})
        count += 1
    check_readme_alarms(alarms)
    if failures:
        print("template checks failed:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"template checks passed over {count} parameter cases: NoEcho or existing secret read from Secrets Manager, "
          "public Function URL with both permissions, no hard-coded names, IAM on the exact resources (another account's "
          "state machine fails the deploy), FIFO queue name within 80 characters for any stack name, queue and logs retained, "
          "alarms on every way to lose an event (as the README lists them), deploy commands carry the built architecture")


if __name__ == "__main__":
    main()
