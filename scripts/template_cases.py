#!/usr/bin/env python3
"""What `template.yaml` deploys, case by case, without AWS.

For each case of a matrix of parameter values this expands the template with the SAM
translator (as `sam deploy` does), checks the parameters against their AllowedPattern /
AllowedValues and the template's Rules (as CloudFormation does before deploying), and then
evaluates the conditions and intrinsic functions (Ref, Fn::If, Fn::Sub, Fn::GetAtt, Fn::Select,
Fn::Split, Fn::Join) with the physical ids CloudFormation would give, so that what the function
will really see (its environment) and what the alarms really watch can be checked:

- by `scripts/check_template.py` (IAM, names, retention, alarms), and
- by `tests/template.rs`, which runs the function's own configuration parser on every resolved
  environment and checks every alarm and dashboard metric against the metrics the function
  really emits.

`python scripts/template_cases.py` prints the cases as JSON. `TEMPLATE_RANDOM_PATTERNS=N` adds N
random pattern values (default 100, fixed seed) to the hand-picked ones. `--deployment` resolves one
deployment whose resources exist (the lifecycle test's, on moto) for the request on stdin.
"""

import copy
import json
import os
import random
import re
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK_UUID = "1c2fa620-982a-11e3-aff7-50e2416294e0"
NO_VALUE = object()
HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "..", "template.yaml")


class NoManagedPolicies:
    def load(self):
        return {}


class Refused(Exception):
    """CloudFormation would refuse these parameters before deploying anything."""


def source():
    with open(TEMPLATE) as f:
        return yaml_parse(f.read())


def parameter_values(template, given):
    values = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    values.update(given)
    for name, value in values.items():
        spec = template["Parameters"][name]
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            raise Refused(f"{name}: {value!r} is not one of {spec['AllowedValues']}")
        # CloudFormation matches AllowedPattern against the whole value (Java regex; these
        # patterns use nothing Python reads differently).
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value, re.DOTALL):
            raise Refused(f"{name}: {value!r} does not match AllowedPattern {spec['AllowedPattern']}")
        if "MinLength" in spec and len(value) < spec["MinLength"]:
            raise Refused(f"{name}: shorter than {spec['MinLength']}")
        if spec.get("Type") == "Number" and "MinValue" in spec and int(value) < spec["MinValue"]:
            raise Refused(f"{name}: below {spec['MinValue']}")
    return values


class Stack:
    """Resolves one expanded template for one set of parameter values.

    `physical_ids` gives the ids of resources that exist (a test's resources on moto), in place of
    the ones CloudFormation would generate; `stack_uuid` the stack id's unique part."""

    def __init__(self, expanded, parameters, stack_name, physical_ids=None, stack_uuid=STACK_UUID):
        self.template = expanded
        self.parameters = parameters
        self.stack_name = stack_name
        self.given_ids = physical_ids or {}
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack_name}/{stack_uuid}",
        }
        self.conditions = {}
        for name in expanded.get("Conditions", {}):
            self.condition(name)
        self.resources = {
            name: resource
            for name, resource in expanded["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }

    # -- conditions and intrinsic functions
    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def value(self, node):
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = (self.value(v) for v in arg)
                return str(a) == str(b)
            if key == "Fn::And":
                return all(self.value(v) for v in arg)
            if key == "Fn::Or":
                return any(self.value(v) for v in arg)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::Select":
                index, items = self.value(arg[0]), self.value(arg[1])
                return items[int(index)]
            if key == "Fn::Split":
                return self.value(arg[1]).split(arg[0])
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.value(arg[1]))
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(name, attribute)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                variables = {k: self.value(v) for k, v in variables.items()}
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self.sub_variable(m.group(1), variables)), text)
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}

    def sub_variable(self, name, variables):
        if name in variables:
            return variables[name]
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self.attribute(resource, attribute)
        return self.ref(name)

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical_id(name)

    # -- what CloudFormation names things
    def generated_name(self, logical_id, limit=64):
        return f"{self.stack_name}-{logical_id}-1A2B3C4D5E6F"[:limit]

    def physical_id(self, name):
        if name in self.given_ids:
            return self.given_ids[name]
        resource = self.resources.get(name)
        if resource is None:
            raise KeyError(f"Ref to {name}, which this case does not create")
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.attribute(name, 'QueueName')}"
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{self.generated_name(name)}-AbCdEf"
        if kind == "AWS::StepFunctions::StateMachine":
            return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.attribute(name, 'Name')}"
        if kind == "AWS::Events::EventBus":
            return self.value(properties["Name"])
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{self.generated_name(name, 256)}"
        if kind == "AWS::Lambda::Function":
            return self.value(properties["FunctionName"]) if "FunctionName" in properties else self.generated_name(name)
        if kind in ("AWS::Logs::LogGroup", "AWS::CloudWatch::Dashboard", "AWS::IAM::Role", "AWS::CloudWatch::Alarm"):
            return self.generated_name(name)
        return f"{name}-physical-id"

    def attribute(self, name, attribute):
        resource = self.resources[name]
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue" and attribute == "QueueName":
            if "QueueName" in properties:
                return self.value(properties["QueueName"])
            # CloudFormation's generated name, with ".fifo" added but nothing shortened.
            suffix = ".fifo" if properties.get("FifoQueue") else ""
            return self.generated_name(name, 1000) + suffix
        if resource["Type"] == "AWS::SQS::Queue" and attribute == "Arn":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.attribute(name, 'QueueName')}"
        if resource["Type"] == "AWS::StepFunctions::StateMachine" and attribute == "Name":
            return self.generated_name(name, 80)
        if attribute == "Arn":
            kinds = {"AWS::IAM::Role": "iam::{a}:role/{n}", "AWS::Lambda::Function": "lambda:{r}:{a}:function:{n}",
                     "AWS::Logs::LogGroup": "logs:{r}:{a}:log-group:{n}", "AWS::Events::EventBus": "events:{r}:{a}:event-bus/{n}",
                     "AWS::DynamoDB::Table": "dynamodb:{r}:{a}:table/{n}"}
            pattern = kinds.get(resource["Type"], "unknown:{r}:{a}:{n}")
            return "arn:aws:" + pattern.format(r=REGION, a=ACCOUNT, n=self.physical_id(name))
        if resource["Type"] == "AWS::Lambda::Url" and attribute == "FunctionUrl":
            return "https://abcdefghijklmnop.lambda-url.us-east-1.on.aws/"
        return f"{name}.{attribute}"

    def resolved(self, name):
        resource = copy.deepcopy(self.resources[name])
        resource["Properties"] = self.value(resource.get("Properties", {}))
        return resource

    def of_type(self, kind):
        return {name: self.resolved(name) for name, r in self.resources.items() if r["Type"] == kind}


def check_rules(template, parameters):
    stack = Stack({"Resources": {}, "Conditions": {}}, parameters, "rules")
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not stack.value(rule["RuleCondition"]):
            continue
        for assertion in rule["Assertions"]:
            if not stack.value(assertion["Assert"]):
                raise Refused(assertion["AssertDescription"])


def resolve(parameters, stack_name="momento-webhook", physical_ids=None, stack_uuid=STACK_UUID):
    """The deployed stack for `parameters`, or `Refused` with CloudFormation's reason."""
    template = source()
    values = parameter_values(template, parameters)
    check_rules(template, values)
    expandable = copy.deepcopy(template)
    for function in ("WebhookFunction", "BridgeFunction"):
        expandable["Resources"][function]["Properties"]["CodeUri"] = "s3://bucket/key"
    expanded = transform(expandable, values, NoManagedPolicies())
    return Stack(expanded, values, stack_name, physical_ids, stack_uuid)


def deployment(parameters, stack_name, physical_ids, stack_uuid):
    """What one deployment gives the function and the operator: the function's name and
    environment, and the stack's outputs, with the physical ids of existing resources."""
    stack = resolve(parameters, stack_name, physical_ids, stack_uuid)
    function = stack.resolved("WebhookFunction")["Properties"]
    outputs = {name: stack.value(output["Value"]) for name, output in stack.template.get("Outputs", {}).items()
               if "Condition" not in output or stack.condition(output["Condition"])}
    return {
        "function_name": stack.physical_id("WebhookFunction"),
        "environment": function["Environment"]["Variables"],
        "outputs": outputs,
        "queue_name": stack.attribute("DeadLetterQueue", "QueueName"),
        "resources": sorted(stack.resources),
    }


def alarm_metrics(stack):
    """Every metric an alarm watches: (namespace, metric, {dimension: value}, alarm name); each
    metric of a metric-math alarm."""
    for name, alarm in stack.of_type("AWS::CloudWatch::Alarm").items():
        p = alarm["Properties"]
        watched = [q["MetricStat"]["Metric"] for q in p["Metrics"] if "MetricStat" in q] if "Metrics" in p else [p]
        for metric in watched:
            dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric["Namespace"], metric["MetricName"], dimensions, name


def dashboard_metrics(stack):
    """Every metric a dashboard graph names, with CloudWatch's "same as above" shorthand expanded."""
    for dashboard in stack.of_type("AWS::CloudWatch::Dashboard").values():
        body = json.loads(dashboard["Properties"]["DashboardBody"])
        for widget in body["widgets"]:
            previous = None
            for line in widget.get("properties", {}).get("metrics", []):
                fields = [f for f in line if not isinstance(f, dict)]
                fields = [p if f == "." and previous else f for f, p in zip(fields, (previous or fields) + [None] * len(fields))]
                previous = fields
                namespace, metric, rest = fields[0], fields[1], fields[2:]
                yield namespace, metric, dict(zip(rest[0::2], rest[1::2])), widget["properties"].get("title")


NASTY_PATTERNS = [
    "*", "workflow-*", "a*b", "*-eu", "é*", "chat room", "订单*", "🚀", "a.b", "{}", "[*]", "$x", "${x}",
    "'", "*a*", "line\u2028sep", "\u00a0", "x" * 300, "\tt", "new\nline", "quote\"", "back\\slash", "**", "a**",
    "", "\x7f", "\x00",
]


def random_patterns(count, seed=20261127):
    rng = random.Random(seed)
    alphabet = "ab*-_./:#@ é世🚀\"\\\t\n\x01\x7f{}[]$%'"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def cases():
    """(name, parameters, stack name) for the matrix; every case names someone to alarm unless it
    says otherwise (the template refuses a stack whose alarms reach nobody)."""
    for name, parameters, stack_name in every_case():
        if "AlarmEmail" not in parameters and "AlarmTopicArn" not in parameters:
            parameters = {**parameters, "AlarmEmail": "ops@example.com"}
        yield name, parameters, stack_name


def every_case():
    other_region = "arn:aws:states:eu-west-1:123456789012:stateMachine:fulfil"
    this_account = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:fulfil"
    other_account = "arn:aws:states:us-east-1:210987654321:stateMachine:fulfil"
    secret = {}
    existing = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:momento-AbCdEf"
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    long_name = "a" + "-long-stack-name" * 8
    long_name = (long_name + "x" * 128)[:128]
    yield "defaults", dict(secret), "momento-webhook"
    yield "128-character stack name", dict(secret), long_name
    yield "existing secret", {"ExistingSigningSecretArn": existing}, "s"
    yield "existing secret with a customer managed key", {"ExistingSigningSecretArn": existing, "SigningSecretKmsKeyArn": key}, "s"
    yield "existing secret in another region", {"ExistingSigningSecretArn": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:a/b_c-XyZ123",
                                                "SigningSecretKmsKeyArn": key.replace(REGION, "eu-central-1")}, "s"
    yield "partial secret ARN", {"ExistingSigningSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:momento"}, "s"
    # A partial ARN that the full-ARN pattern cannot tell from a full one: the secret is really
    # ...:secret:momento-apikey-XyZ123.
    yield "partial ARN that looks full", {"ExistingSigningSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:momento-apikey"}, "s"
    yield "KMS key without an existing secret", {"SigningSecretKmsKeyArn": key}, "s"
    yield "alarm email", {"AlarmEmail": "ops@example.com"}, "s"
    yield "alarm email and topic", {"AlarmEmail": "ops+hooks@example.com", "AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:pager"}, "s"
    yield "not an email", {"AlarmEmail": "ops at example"}, "s"
    yield "alarm topic only", {"AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:pager"}, "s"
    yield "alarms reaching nobody", {"AlarmEmail": "", "AlarmTopicArn": ""}, "s"
    for name, arn in [("state machine name with dots", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:orders.v2.flow"),
                      ("state machine version", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:fulfil:7"),
                      ("state machine alias", f"arn:aws:states:eu-west-1:{ACCOUNT}:stateMachine:fulfil:PROD"),
                      ("state machine name with a slash", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:a/b")]:
        yield name, {"StateMachineArn": arn}, "s"
    for create_bus in ("true", "false"):
        yield f"CreateEventBus={create_bus}", {**secret, "CreateEventBus": create_bus}, "s"
        yield f"example state machine, CreateEventBus={create_bus}", {**secret, "CreateEventBus": create_bus, "CreateExampleStateMachine": "true"}, "s"
        yield f"existing state machine, CreateEventBus={create_bus}", {**secret, "CreateEventBus": create_bus, "StateMachineArn": this_account}, "s"
        yield f"both patterns *, CreateEventBus={create_bus}", {**secret, "CreateEventBus": create_bus, "StateMachineArn": this_account,
                                                                 "StateMachineCachePattern": "*", "StateMachineTopicPattern": "*"}, "s"
    yield "example state machine, both patterns *", {**secret, "CreateExampleStateMachine": "true", "StateMachineCachePattern": "*", "StateMachineTopicPattern": "*"}, "s"
    yield "state machine in another region", {**secret, "StateMachineArn": other_region}, "s"
    yield "state machine in another account", {**secret, "StateMachineArn": other_account}, "s"
    yield "Tracing=Active, unreserved, own namespace, cache and topic dimensions", {
        **secret, "Tracing": "Active", "ReservedConcurrency": "0", "MetricsNamespace": "Team/Webhooks", "MetricsCacheTopicDimensions": "true",
        "AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms"}, "s"
    api_key = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:momento-api-key-AbCdEf"
    endpoint = "cell-4-us-west-2-1.prod.a.momentohq.com"
    bridge_on = {"MomentoApiKeySecretArn": api_key, "MomentoEndpoint": endpoint}
    yield "bridge, one topic", {**secret, **bridge_on, "BridgeTopics": "orders/checkout"}, "s"
    yield "bridge, topics with slashes, state machine for some", {
        **secret, **bridge_on, "BridgeTopics": "orders/checkout/eu,orders/refunds", "StateMachineArn": this_account,
        "StateMachineCachePattern": "orders", "StateMachineTopicPattern": "checkout*"}, "s"
    yield "bridge, API key secret by a partial ARN that looks full", {
        **secret, "MomentoApiKeySecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:momento-apikey", "MomentoEndpoint": endpoint,
        "BridgeTopics": "orders/checkout"}, "s"
    yield "bridge, API key secret with a customer managed key in another region", {
        **secret, "MomentoApiKeySecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:momento-api-key-AbCdEf",
        "MomentoApiKeyKmsKeyArn": key.replace(REGION, "eu-west-1"), "MomentoEndpoint": endpoint, "BridgeTopics": "orders/checkout"}, "s"
    yield "bridge without its API key", {**secret, "BridgeTopics": "orders/checkout", "MomentoEndpoint": endpoint}, "s"
    yield "bridge without an endpoint (a v1 key or a legacy token names it)", {
        **secret, "BridgeTopics": "orders/checkout", "MomentoApiKeySecretArn": api_key}, "s"
    yield "bridge, unreserved", {**secret, **bridge_on, "BridgeTopics": "orders/checkout", "BridgeReservedConcurrency": "0",
                                  "ReservedConcurrency": "0"}, "s"
    yield "bridge, endpoint outside Momento's domain", {**secret, **bridge_on, "BridgeTopics": "orders/checkout",
                                                         "MomentoEndpoint": "cell-4-us-west-2-1.prod.a.momento.example"}, "s"
    yield "bridge with a topic that is not cache/topic", {**secret, **bridge_on, "BridgeTopics": "checkout"}, "s"
    patterns = NASTY_PATTERNS + random_patterns(int(os.environ.get("TEMPLATE_RANDOM_PATTERNS", "100")))
    for i, pattern in enumerate(patterns):
        yield f"cache pattern {i} {pattern!r}", {**secret, "StateMachineArn": this_account, "StateMachineCachePattern": pattern}, "s"
        yield f"topic pattern {i} {pattern!r}", {**secret, "StateMachineArn": this_account, "StateMachineTopicPattern": pattern,
                                                  "StateMachineCachePattern": "orders"}, "s"


def bridge(stack):
    """The topic bridge as deployed, or None when the parameters leave it out."""
    if "BridgeFunction" not in stack.resources:
        return None
    function = stack.resolved("BridgeFunction")["Properties"]
    role = stack.resolved("BridgeFunctionRole")["Properties"]
    schedules = stack.of_type("AWS::Events::Rule")
    invoke_configs = stack.of_type("AWS::Lambda::EventInvokeConfig")
    return {
        "function_name": stack.physical_id("BridgeFunction"),
        "environment": function["Environment"]["Variables"],
        "timeout": function.get("Timeout"),
        "memory_size": function.get("MemorySize"),
        "reserved_concurrency": function.get("ReservedConcurrentExecutions"),
        "statements": [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]],
        "schedules": [r["Properties"].get("ScheduleExpression") for r in schedules.values()],
        "invoke_configs": [c["Properties"] for c in invoke_configs.values()],
        "table": stack.physical_id("BridgeCheckpoints"),
    }


def describe(name, parameters, stack_name):
    """A case as plain data."""
    try:
        stack = resolve(parameters, stack_name)
    except Refused as refused:
        return {"name": name, "parameters": parameters, "refused": str(refused)}
    function = stack.resolved("WebhookFunction")["Properties"]
    role = stack.resolved("WebhookFunctionRole")["Properties"]
    return {
        "name": name,
        "parameters": stack.parameters,
        "stack_name": stack_name,
        "refused": None,
        "function_name": stack.physical_id("WebhookFunction"),
        "environment": function["Environment"]["Variables"],
        "tracing": function.get("TracingConfig", {}).get("Mode"),
        "reserved_concurrency": function.get("ReservedConcurrentExecutions"),
        "timeout": function.get("Timeout"),
        "queue_name": stack.attribute("DeadLetterQueue", "QueueName"),
        "statements": [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]],
        "alarms": [{"namespace": n, "metric": m, "dimensions": d, "name": a} for n, m, d, a in alarm_metrics(stack)],
        "alarm_actions": {name: a["Properties"].get("AlarmActions", []) for name, a in stack.of_type("AWS::CloudWatch::Alarm").items()},
        "dashboard": [{"namespace": n, "metric": m, "dimensions": d, "title": t} for n, m, d, t in dashboard_metrics(stack)],
        "retained": sorted(name for name, r in stack.resources.items()
                           if r.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate") and r.get("UpdateReplacePolicy") == "Retain"),
        "kept_after_failed_create": sorted(name for name, r in stack.resources.items() if r.get("DeletionPolicy") == "Retain"),
        "alarm_topic": stack.physical_id("AlarmTopic"),
        "alarm_email": [s["Properties"]["Endpoint"] for s in stack.of_type("AWS::SNS::Subscription").values()],
        "outputs": {name: stack.value(output["Value"]) for name, output in stack.template.get("Outputs", {}).items()
                    if "Condition" not in output or stack.condition(output["Condition"])},
        "bridge": bridge(stack),
        "placeholder_key": (stack.resolved("SigningSecret")["Properties"].get("GenerateSecretString", {}).get("GenerateStringKey")
                            if "SigningSecret" in stack.resources else None),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--deployment"]:
        # One deployment for a test: {"parameters", "stack_name", "physical_ids", "stack_uuid"} on stdin.
        request = json.load(sys.stdin)
        json.dump(deployment(request["parameters"], request["stack_name"], request.get("physical_ids", {}),
                             request.get("stack_uuid", STACK_UUID)), sys.stdout, ensure_ascii=False)
    else:
        json.dump([describe(*case) for case in cases()], sys.stdout, ensure_ascii=False)
