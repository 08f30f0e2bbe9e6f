#!/usr/bin/env python3
"""Checks on the CloudFormation that `template.yaml` expands to, beyond cfn-lint and
`sam validate`: the promises the README makes about the deployed stack.

Runs the SAM translator offline (part of `make test` and `make lint`). Conditions stay
unresolved in its output, so both branches of every `Fn::If` are checked.
"""

import json
import re
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

NAMING_PROPERTIES = {"Name", "QueueName", "FunctionName", "RoleName", "LogGroupName", "StateMachineName", "AlarmName"}
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


class NoManagedPolicies:
    def load(self):
        return {}


def expand():
    template = yaml_parse(open("template.yaml").read())
    # The translator wants an S3 location; `sam build` fills in the real one.
    template["Resources"]["WebhookFunction"]["Properties"]["CodeUri"] = "s3://bucket/key"
    return template, transform(template, {"MomentoSigningSecret": "s"}, NoManagedPolicies())


def branches(value):
    """Both outcomes of an `Fn::If` (recursively), without `AWS::NoValue`."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, yes, no = value["Fn::If"]
        return branches(yes) + branches(no)
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def resources_of(expanded, kind):
    return {name: r for name, r in expanded["Resources"].items() if r["Type"] == kind}


def literal_strings(value):
    """Every plain string inside a property value, skipping intrinsic functions (Ref, Sub, ...)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict) and not any(k.startswith("Fn::") or k == "Ref" for k in value):
        for v in value.values():
            yield from literal_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from literal_strings(v)


def check_template():
    label = "template.yaml"
    source, expanded = expand()

    # No plain-text secret anywhere but the NoEcho parameter and the secret resource.
    check(source["Parameters"]["MomentoSigningSecret"].get("NoEcho") is True, f"{label}: signing secret parameter must be NoEcho")
    function = expanded["Resources"]["WebhookFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    check("MOMENTO_SIGNING_SECRET" not in variables, f"{label}: the secret itself must not be in the environment")
    check(variables.get("MOMENTO_SIGNING_SECRET_ID") == {"Ref": "SigningSecret"}, f"{label}: MOMENTO_SIGNING_SECRET_ID must be the secret's ARN")
    check(variables.get("DEAD_LETTER_QUEUE_URL") == {"Ref": "DeadLetterQueue"}, f"{label}: DEAD_LETTER_QUEUE_URL must be the queue")
    check(function["Runtime"] == "provided.al2023" and function["Handler"] == "bootstrap", f"{label}: provided.al2023 + bootstrap")
    check(function.get("LoggingConfig", {}).get("LogFormat") == "JSON", f"{label}: JSON logs")

    # Function URL: public, with both permissions new URLs need.
    urls = resources_of(expanded, "AWS::Lambda::Url")
    check(len(urls) == 1 and list(urls.values())[0]["Properties"]["AuthType"] == "NONE", f"{label}: one Function URL with AuthType NONE")
    actions = {(p["Properties"]["Action"], json.dumps(p["Properties"].get("FunctionUrlAuthType")), json.dumps(p["Properties"].get("InvokedViaFunctionUrl")))
               for p in resources_of(expanded, "AWS::Lambda::Permission").values()}
    check(("lambda:InvokeFunctionUrl", '"NONE"', "null") in actions, f"{label}: lambda:InvokeFunctionUrl permission missing: {actions}")
    check(("lambda:InvokeFunction", "null", "true") in actions, f"{label}: lambda:InvokeFunction (InvokedViaFunctionUrl) permission missing: {actions}")

    # No hard-coded resource names: every name is derived (Ref/Sub/GetAtt) or left to CloudFormation.
    for name, resource in expanded["Resources"].items():
        for prop in NAMING_PROPERTIES & set(resource.get("Properties", {})):
            value = resource["Properties"][prop]
            check(not isinstance(value, str), f"{label}: {name}.{prop} is hard-coded ({value!r})")

    # Least privilege: every statement of the function role's inline policies names resources.
    role = expanded["Resources"]["WebhookFunctionRole"]["Properties"]
    policies = [p for entry in role.get("Policies", []) for p in branches(entry)]
    for policy in policies:
        document = policy["PolicyDocument"]
        for statement in document.get("Statement", []) if isinstance(document, dict) else []:
            resources = statement.get("Resource")
            resources = resources if isinstance(resources, list) else [resources]
            for resource in resources:
                check(resource != "*" and not (isinstance(resource, str) and resource.endswith(":*")),
                      f"{label}: policy {policy['PolicyName']} grants {statement.get('Action')} on {resource!r}")
    conditional = [e["Fn::If"][0] for e in role.get("Policies", []) if isinstance(e, dict) and "Fn::If" in e]
    check("states:StartExecution" in json.dumps(policies), f"{label}: no StartExecution permission for the state machine route")
    check(conditional == ["HasStateMachine"], f"{label}: StartExecution must be granted only when there is a state machine: {conditional}")
    check(isinstance(variables.get("ROUTES"), dict) and variables["ROUTES"].get("Fn::If", [None])[0] == "HasStateMachine",
          f"{label}: ROUTES must be set only when there is a state machine")

    # Unused resources: everything but alarms, permissions and the URL is referenced somewhere.
    text = json.dumps(expanded)
    for name, resource in expanded["Resources"].items():
        if resource["Type"] in ("AWS::CloudWatch::Alarm", "AWS::Lambda::Permission", "AWS::Lambda::Url"):
            continue
        referenced = re.search(r'"Ref": "%s"|"%s\.|\["%s",|\$\{%s[.}]' % ((re.escape(name),) * 4), text)
        check(referenced, f"{label}: resource {name} is not used")

    queue = expanded["Resources"]["DeadLetterQueue"]["Properties"]
    check(queue.get("FifoQueue") is True and queue.get("SqsManagedSseEnabled") is True and queue.get("MessageRetentionPeriod"),
          f"{label}: dead-letter queue must be FIFO, encrypted, with retention set")
    check(resources_of(expanded, "AWS::Logs::LogGroup") and all(
        g["Properties"].get("RetentionInDays") for g in resources_of(expanded, "AWS::Logs::LogGroup").values()), f"{label}: log group retention")


check_template()

if failures:
    print("template checks failed:", *failures, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("template checks passed: NoEcho secret read from Secrets Manager, public Function URL with both permissions, "
      "no hard-coded names, IAM scoped to resources, every resource used, FIFO encrypted dead-letter queue")
