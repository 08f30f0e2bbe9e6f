#!/usr/bin/env python3
"""Checks on what `template.yaml` deploys, beyond cfn-lint and `sam validate`: the promises the
README makes about the stack, for every case of the parameter matrix in template_cases.py; and
the deploy path as SAM CLI itself runs it: a first `sam deploy --guided` answered through SAM
CLI's own prompts, then the command line of every later `make deploy` parsed by SAM CLI's own
command-line parser from the samconfig.toml that guided deploy saved. Part of `make test` and
`make lint`.

(`tests/template.rs` runs the function's own configuration parser and metrics over the same
cases.)
"""

import contextlib
import io
import itertools
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy  # noqa: E402
import template_cases  # noqa: E402
from template_cases import ACCOUNT, REGION, TEMPLATE as TEMPLATE_PATH, Refused, resolve, source  # noqa: E402

NAMING_PROPERTIES = {"Name", "FunctionName", "RoleName", "LogGroupName", "StateMachineName", "AlarmName", "DashboardName"}
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def expect_refused(parameters, because):
    if "AlarmEmail" not in parameters and "AlarmTopicArn" not in parameters:
        parameters = {**parameters, "AlarmEmail": "ops@example.com"}
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
    check(not case["kept_after_failed_create"], f"{label}: a create that rolls back must leave no orphans: {case['kept_after_failed_create']}")
    if not given:
        check(case["placeholder_key"] == "signing_secret_not_stored_yet", f"{label}: the new secret must hold the placeholder the function recognises")

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
            # The ARN as given, and the state machine's own when that is a version or alias.
            unqualified = ":".join(machines[0].split(":")[:7])
            granted = set(resource) if isinstance(resource, list) else {resource}
            check(granted == {machines[0], unqualified},
                  f"{label}: StartExecution must be granted on the ARN given ({machines[0]}) and its state machine, not {resource!r}")
        else:
            # IAM refuses a resource that is not an ARN, so such a stack fails to deploy, with
            # this sentence in the error, instead of deploying green and failing every start.
            check(isinstance(resource, str) and not resource.startswith("arn:") and "another account" in resource,
                  f"{label}: a state machine in another account must fail the deploy: {resource!r}")
    else:
        check(not starts, f"{label}: StartExecution granted without a state machine route")
    # The secrets are readable under the role whether their ARN was given full or partial.
    check_secret_readable(label, statements, secret_arn)
    bridge_case = case["bridge"]
    if bridge_case:
        check_secret_readable(f"{label} (bridge)", bridge_case["statements"], bridge_case["environment"]["MOMENTO_API_KEY_SECRET_ID"])
    if bridge_case:
        check_decrypt(f"{label} (bridge)", bridge_case["statements"], case["parameters"]["MomentoApiKeyKmsKeyArn"],
                      bridge_case["environment"]["MOMENTO_API_KEY_SECRET_ID"])
    # A customer managed key of an existing secret: decrypt with it, through Secrets Manager only.
    decrypts = [s for s in statements if "kms:Decrypt" in json.dumps(s["Action"])]
    key = case["parameters"]["SigningSecretKmsKeyArn"]
    if key:
        region = given.split(":")[3]
        check(len(decrypts) == 1 and decrypts[0]["Resource"] == key, f"{label}: kms:Decrypt must be granted on {key}: {decrypts}")
        via = decrypts[0].get("Condition", {}).get("StringEquals", {}).get("kms:ViaService") if decrypts else None
        check(via == f"secretsmanager.{region}.amazonaws.com", f"{label}: kms:Decrypt only through Secrets Manager in {region}: {via!r}")
    else:
        check(not decrypts, f"{label}: kms:Decrypt granted without a key: {decrypts}")

    # Alarms on everything that loses events, each telling someone when a topic is set.
    watched = {(a["namespace"], a["metric"], a["dimensions"].get("Reason")) for a in case["alarms"]}
    namespace = case["parameters"]["MetricsNamespace"]
    for wanted in [("AWS/Lambda", "Url5xxCount", None), ("AWS/Lambda", "Throttles", None), ("AWS/Lambda", "Errors", None),
                   ("AWS/SQS", "NumberOfMessagesSent", None), (namespace, "Rejected", "invalid_signature"),
                   (namespace, "DeadLettered", None), (namespace, "Lost", None)]:
        check(wanted in watched, f"{label}: no alarm on {wanted}")
    # Every alarm reaches someone: the stack's topic always (email when given), the user's too.
    topic = case["parameters"]["AlarmTopicArn"]
    for name, actions in case["alarm_actions"].items():
        check(actions == [case["alarm_topic"]] + ([topic] if topic else []), f"{label}: alarm {name} notifies {actions}")
    email = case["parameters"]["AlarmEmail"]
    check(case["alarm_email"] == ([email] if email else []), f"{label}: email subscriptions {case['alarm_email']}")
    topics = case["outputs"].get("AlarmTopics", "").split(",")
    check(topics == [case["alarm_topic"]] + ([topic] if topic else []), f"{label}: the AlarmTopics output {topics} (webhook-ops smoke reads it)")
    notify = case["outputs"].get("AlarmsNotify", "")
    check(case["alarm_topic"] in notify and (email in notify if email else "no email" in notify) and topic in notify,
          f"{label}: the AlarmsNotify output must say where alarms go: {notify!r}")
    bridge = (case["bridge"] or {}).get("function_name")
    for alarm in case["alarms"]:
        check(alarm["dimensions"].get("FunctionName", case["function_name"]) in (case["function_name"], bridge),
              f"{label}: alarm {alarm['name']} watches another function")
    if bridge:
        bridge_watched = {a["metric"] for a in case["alarms"] if a["dimensions"].get("FunctionName") == bridge}
        check(bridge_watched == {"MissedMessages", "DeadLettered", "Errors", "SubscriptionErrors", "Lost", "Invocations",
                                 "AsyncEventsDropped"}, f"{label}: the bridge's alarms {bridge_watched}")
    check(case["tracing"] == case["parameters"]["Tracing"], f"{label}: Tracing {case['tracing']} is not the parameter's")
    reserved = int(case["parameters"]["ReservedConcurrency"])
    got = case["reserved_concurrency"]
    check((int(got) if got is not None else None) == (reserved or None), f"{label}: reserved concurrency {got!r}")


def iam_matches(pattern, arn):
    """IAM's resource matching: `*` any run of characters, `?` exactly one, the rest literal."""
    return re.fullmatch("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), arn, re.S) is not None


def check_secret_readable(label, statements, given):
    """`GetSecretValue` is allowed on the secret `given` names, whether `given` is its full ARN or
    a partial one (the secret's ARN is then `given` plus "-" and six characters), and on nothing
    else: not a secret whose name only starts the same."""
    granted = [resource for s in statements if s.get("Effect") == "Allow" and "secretsmanager:GetSecretValue" in json.dumps(s["Action"])
               for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    for arn in (given, given + "-AbC123"):
        check(any(iam_matches(r, arn) for r in granted), f"{label}: GetSecretValue on {arn} is denied (granted: {granted})")
    for other in (given + "-x", given + "-AbC1234", given + "2-AbC123"):
        check(not any(iam_matches(r, other) for r in granted), f"{label}: GetSecretValue is granted on another secret, {other} ({granted})")


def check_decrypt(label, statements, key, secret_arn):
    """kms:Decrypt on exactly `key`, through Secrets Manager in the secret's region, or none."""
    decrypts = [s for s in statements if "kms:Decrypt" in json.dumps(s["Action"])]
    if not key:
        check(not decrypts, f"{label}: kms:Decrypt granted without a key: {decrypts}")
        return
    region = secret_arn.split(":")[3]
    check(len(decrypts) == 1 and decrypts[0]["Resource"] == key, f"{label}: kms:Decrypt must be granted on {key}: {decrypts}")
    via = decrypts[0].get("Condition", {}).get("StringEquals", {}).get("kms:ViaService") if decrypts else None
    check(via == f"secretsmanager.{region}.amazonaws.com", f"{label}: kms:Decrypt only through Secrets Manager in {region}: {via!r}")


def check_expanded_defaults():
    label = "template.yaml"
    template = source()
    # The secret never passes through CloudFormation (`webhook-ops rotate` stores it), and guided
    # deploys prompt every parameter with a default they can keep (a NoEcho one has none).
    check(not any(p.get("NoEcho") for p in template["Parameters"].values()), f"{label}: no parameter may hold a secret")
    stack = resolve({"AlarmEmail": "ops@example.com"})
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
        if resource["Type"] in ("AWS::CloudWatch::Alarm", "AWS::Lambda::Permission", "AWS::Lambda::Url", "AWS::CloudWatch::Dashboard",
                                "AWS::SNS::Subscription", "AWS::Lambda::EventInvokeConfig"):
            continue
        check(re.search(r'"Ref": "%s"|"%s\.|\["%s",|\$\{%s[.}]' % ((re.escape(name),) * 4), text), f"{label}: resource {name} is not used")
    # The name CloudFormation would generate without QueueName: too long for longer stacks.
    generated = template_cases.Stack({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}}}},
                                     {}, "s" * 70).attribute("Q", "QueueName")
    check(len(generated) > 80, "the generated-name model no longer shows the problem QueueName solves")


def check_deploy_commands():
    """A first `make deploy` as guided deploys it, then every later one as SAM CLI parses it."""
    out = subprocess.run(["make", "-n", "deploy", "ARCH=x86_64"], capture_output=True, text=True, check=True).stdout
    check("scripts/deploy.py --architecture x86_64" in out, f"make deploy must go through scripts/deploy.py: {out}")
    # The README's first deploy, answered as the README says, prompts exactly as it shows.
    with tempfile.TemporaryDirectory() as directory:
        shown = readme_guided_deploy()
        transcript, _ = guided_first_deploy(directory, [answer for _, answer in shown])
        asked = [line.strip() for line in transcript.splitlines()]
        for prompt, answer in shown:
            line = f"{prompt} {answer}".strip()
            check(line in asked, f"README's guided deploy shows {line!r}, which SAM CLI does not ask:\n{transcript}")
    with tempfile.TemporaryDirectory() as directory:
        first = deploy.commands("arm64", os.path.join(directory, "samconfig.toml"), "sam")[1]
        check("--guided" in first, f"the first deploy must be guided: {first}")
        # The user's answers, some awkward; guided saves them (it skips only NoEcho parameters).
        answers = {"EventBusName": "orders bus", "ExistingSigningSecretArn": "", "AlarmEmail": "ops@example.com",
                   "StateMachineCachePattern": 'say "hi"=a,b', "StateMachineTopicPattern": "workflow-*"}
        transcript, saved = guided_first_deploy(directory, answers)
        check("has no authentication" in transcript, f"guided deploy asks about the Function URL: {transcript[-400:]}")
        for architecture in ("x86_64", "arm64"):
            later = deploy.commands(architecture, os.path.join(directory, "samconfig.toml"), "sam")[1]
            check("--guided" not in later, f"a later deploy must not be guided: {later}")
            parsed = sam_deploy_overrides(later)
            wanted = {**saved, "Architecture": architecture}
            check(parsed == wanted, f"sam deploy would get {parsed}, not the saved {wanted}")
        # The same path with an empty answer left out of the saved list, or a list form.
        for saved_form in ['EventBusName="x y" ExistingSigningSecretArn=""', ["EventBusName=x", "Architecture=arm64"]]:
            overrides = deploy.overrides_with_architecture(saved_form, "x86_64")
            parsed = sam_deploy_overrides(["sam", "deploy", "--parameter-overrides", overrides])
            check(parsed.get("Architecture") == "x86_64" and parsed.get("EventBusName") in ("x y", "x"), f"{saved_form!r} -> {parsed}")


def readme_guided_deploy():
    """(prompt, answer) for each line of the README's guided deploy."""
    text = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = next(b for b in text.split("```")[1::2] if b.lstrip("\n").startswith("Stack Name ["))
    lines = []
    for line in block.strip("\n").splitlines():
        found = re.match(r"^(.*?\]:)(?: (\S+))?(?:\s{2,}.*)?$", line)
        check(found is not None, f"README's guided deploy: cannot read {line!r}")
        if found:
            lines.append((found.group(1), found.group(2) or ""))
    return lines


def guided_first_deploy(directory, answers):
    """`sam deploy --guided` run by SAM CLI's own code and prompts in `directory`; its only two AWS
    calls are replaced (the managed bucket, and the container-image repositories this template has
    none of). `answers` is either every line typed, in order, or the parameters' answers by name
    (Enter for the others, "y" to the Function URL question). Returns the transcript and the
    overrides saved in samconfig.toml."""
    import click
    from click.testing import CliRunner
    from samcli.commands._utils.template import get_template_parameters
    from samcli.commands.deploy import guided_context

    template = os.path.join(directory, "template.yaml")
    with open(TEMPLATE_PATH) as source_file, open(template, "w") as copy:
        copy.write(source_file.read())
    parameters = get_template_parameters(template_file=template)
    if isinstance(answers, dict):
        lines = ["hooks", ""] + [answers.get(name, "") for name in parameters] + ["", "", "", "y", "", "", ""]
    else:
        lines = answers

    # Named as SAM's own command: guided deploy saves under the invoking command's name.
    @click.command(name="deploy")
    def guided():
        context = guided_context.GuidedContext(
            template_file=template, stack_name=None, s3_bucket=None, image_repository=None, image_repositories=None,
            s3_prefix=None, region=REGION, capabilities=None, parameter_overrides={"Architecture": "arm64"},
            # Saved beside the template, as SAM CLI does with the default file name.
            config_section="parameters", config_env="default", config_file="samconfig.toml",
            confirm_changeset=True, disable_rollback=False)
        with mock.patch.object(guided_context, "manage_stack", return_value="managed-bucket"), \
                mock.patch.object(guided_context.GuidedContext, "prompt_image_repository", return_value={}):
            context.run()

    result = CliRunner().invoke(guided, input="\n".join(lines) + "\n", prog_name="deploy")
    check(result.exit_code == 0, f"guided deploy failed: {result.output[-600:]} {result.exception!r}")
    saved = deploy.saved_deploy_parameters(os.path.join(directory, "samconfig.toml"))
    from samcli.cli.types import CfnParameterOverridesType
    return result.output, CfnParameterOverridesType().convert(saved.get("parameter_overrides", ""), None, None)


def sam_deploy_overrides(command):
    """What SAM CLI's own `sam deploy` command-line parser makes of `command`'s overrides."""
    from samcli.commands.deploy.command import cli

    arguments = [a for a in command[2:] if a != "--guided"] + ["--template-file", TEMPLATE_PATH, "--stack-name", "s"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            context = cli.make_context("deploy", arguments)
        except Exception as error:  # noqa: BLE001 - SAM CLI refusing the command line is the finding
            failures.append(f"sam deploy refuses {command}: {error}")
            return {}
    return dict(context.params["parameter_overrides"])


def reference_table(heading):
    """The rows of the first table after `heading` in docs/reference.md, cells trimmed."""
    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "reference.md").read_text()
    after = text.split(f"\n{heading}\n", 1)[1].splitlines()
    lines = [line for line in itertools.takewhile(lambda l: l.startswith("|"),
                                                 itertools.dropwhile(lambda l: not l.startswith("|"), after))]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def check_readme_alarms(alarms):
    """The reference's alarm table names every alarm the template creates, no other, with the metrics it watches."""
    documented = {row[0].strip("`"): row[1] for row in reference_table("## Alarms")}
    check(set(documented) == set(alarms), f"docs/reference.md alarms {sorted(documented)} vs template {sorted(alarms)}")
    for name, metrics in alarms.items():
        for metric in metrics:
            check(f"`{metric}`" in documented.get(name, ""), f"docs/reference.md: {name} should say it watches `{metric}`")


def math_alarm(template, name):
    """A metric-math alarm of the template as a function of its metrics' sums (missing: None),
    evaluated as CloudWatch evaluates its expression, and its threshold test."""
    properties = template["Resources"][name]["Properties"]
    (expression,) = [q["Expression"] for q in properties["Metrics"] if q.get("ReturnData")]
    ids = [q["Id"] for q in properties["Metrics"] if "MetricStat" in q]
    python = re.sub(r"\bAND\b", " and ", re.sub(r"\bOR\b", " or ", expression))
    check(properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", f"{name}: compared as >=")

    def evaluate(**sums):
        check(set(sums) == set(ids), f"{name}: its metrics are {ids}")
        scope = {"IF": lambda c, a, b: a if c else b, "FILL": lambda v, d: d if v is None else v, **sums}
        return eval(python, {"__builtins__": {}}, scope) >= properties["Threshold"]  # noqa: S307 - our template's own expression
    return evaluate


def check_invalid_signature_alarm():
    """The invalid-signature alarm says the function's own secret is wrong (every request refused),
    not that a stranger knocked."""
    fires = math_alarm(source(), "InvalidSignatureAlarm")
    check(not fires(invalid=1, received=1, refused=1), "one forged request on a quiet webhook pages someone")
    check(not fires(invalid=2, received=2, refused=2), "two forged requests on a quiet webhook page someone")
    check(not fires(invalid=50, received=350, refused=50), "forged requests beside Momento's real ones page someone")
    check(not fires(invalid=None, received=None, refused=None), "a quiet webhook pages someone")
    check(not fires(invalid=None, received=30, refused=None), "a working webhook pages someone")
    check(fires(invalid=20, received=20, refused=20), "every event refused for its signature does not page anyone")
    check(fires(invalid=3, received=5, refused=5), "every event refused (some stale) does not page anyone")


def main():
    import logging
    logging.disable(logging.WARNING)  # SAM CLI's and the translator's own chatter
    check_expanded_defaults()
    check_invalid_signature_alarm()
    check_deploy_commands()
    expect_refused({"StateMachineTopicPattern": "a\tb"}, "AllowedPattern")
    expect_refused({"StateMachineCachePattern": "**"}, "AllowedPattern")
    expect_refused({"ExistingSigningSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:momento"}, "AllowedPattern")
    expect_refused({"SigningSecretKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"}, "existing secret")
    expect_refused({"AlarmEmail": "not an address"}, "AllowedPattern")
    expect_refused({"AlarmEmail": "", "AlarmTopicArn": ""}, "Alarms would reach nobody")
    bridge = {"BridgeTopics": "orders/checkout", "MomentoApiKeySecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:k-AbCdEf"}
    for endpoint in ("https://cell-4-us-west-2-1.prod.a.momentohq.com", "cache.cell-4-us-west-2-1.prod.a.momentohq.com",
                     "http://127.0.0.1:8080", "cell-4.prod.a.momentohq.com/", "cell-4.prod.a.momentohq.co",
                     "momentohq.com", "cell-4.prod.a.momentohq.com.example.net", "evil-momentohq.com"):
        expect_refused({**bridge, "MomentoEndpoint": endpoint}, "AllowedPattern")
    expect_refused({"MomentoApiKeyKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"}, "MomentoApiKeySecretArn")
    count = 0
    alarms = {}
    for case in template_cases.cases():
        described = template_cases.describe(*case)
        check_case(described)
        for alarm in described.get("alarms", []):
            alarms.setdefault(alarm["name"], set()).add(alarm["metric"])
        count += 1
    check_readme_alarms(alarms)
    if failures:
        print("template checks failed:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"template checks passed over {count} parameter cases: no secret in any parameter (a placeholder the function "
          "recognises, or an existing secret by full ARN, its KMS key through Secrets Manager only), public Function URL with "
          "both permissions, no hard-coded names, IAM on the exact resources (another account's state machine fails the "
          "deploy), FIFO queue name within 80 characters for any stack name, queue and logs retained but not after a failed "
          "create, alarms on every way to lose an event notifying a topic and the email given (as docs/reference.md lists them); "
          "a guided first deploy through SAM CLI's own prompts, and every later deploy's overrides as SAM CLI parses them, "
          "with the built architecture")


if __name__ == "__main__":
    main()
