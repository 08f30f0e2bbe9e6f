#!/usr/bin/env python3
"""`make demo`: the receiver end to end on this machine.

moto server (started by scripts/with-moto.sh) plays AWS; `cargo lambda watch` runs the function
behind a Function URL emulator, configured as a deployed one is (its settings also registered in
moto's Lambda, where `webhook-ops redrive` reads them, and its secret in Secrets Manager); this
script plays Momento, POSTing signed webhook events (and a few bad ones), then shows where each
one ended up, and redrives a dead-lettered one as an operator would.
"""

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3

MOTO = os.environ["MOTO_ENDPOINT"]
SECRET = "demo-signing-secret"
REGION = "us-east-1"
# `cargo lambda` is the cargo-lambda from this virtual environment.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
AWS_ENV = {
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_ENDPOINT_URL": MOTO,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def client(service):
    return boto3.client(service, endpoint_url=MOTO, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


events, sqs, sfn = client("events"), client("sqs"), client("stepfunctions")
FUNCTION = "momento-webhook-demo"
# How long the first start may take: `cargo lambda watch` compiles the function on the first
# request when nothing has been built for it yet (minutes on a small machine).
START_TIMEOUT_SECONDS = 1800


def heading(text):
    print(f"\n\033[1m== {text}\033[0m")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup():
    heading("Setting up local AWS (moto)")
    urllib.request.urlopen(urllib.request.Request(
        f"{MOTO}/moto-api/config", method="POST",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        headers={"Content-Type": "application/json"}))
    events.create_event_bus(Name="momento-demo")
    target_queue = sqs.create_queue(QueueName="demo-bus-target")["QueueUrl"]
    target_arn = sqs.get_queue_attributes(QueueUrl=target_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all-momento-events", EventBusName="momento-demo",
                    EventPattern=json.dumps({"source": ["Momento"]}))
    events.put_targets(Rule="all-momento-events", EventBusName="momento-demo",
                       Targets=[{"Id": "queue", "Arn": target_arn}])
    machine = sfn.create_state_machine(
        name="demo-fulfil", roleArn="arn:aws:iam::123456789012:role/demo",
        definition=json.dumps({"StartAt": "Fulfil", "States": {"Fulfil": {
            "Type": "Pass", "End": True,
            "Parameters": {"fulfilled_order.$": "$.text_json.order_id", "from_topic.$": "$.topic"}}}}),
    )["stateMachineArn"]
    dlq = sqs.create_queue(QueueName="demo-dead-letters.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    routes = [
        {"name": "fulfilment", "cache": "orders", "topic": "checkout-*", "target": {"state_machine_arn": machine}},
        {"name": "audit", "cache": "audit", "target": {"event_bus": "momento-demo-audit"}},
        {"name": "everything-else", "target": {"event_bus": "momento-demo"}},
    ]
    print("event bus 'momento-demo' with a rule copying every Momento event into SQS queue 'demo-bus-target'")
    print("state machine 'demo-fulfil' (a Pass state) and dead-letter queue 'demo-dead-letters.fifo'")
    print("ROUTES:")
    for r in routes:
        print(f"  {r['name']:16} cache={r.get('cache', '*'):7} topic={r.get('topic', '*'):12} -> {json.dumps(r['target'])}")
    print("  (the 'momento-demo-audit' bus does not exist yet: those events will be dead-lettered)")
    return target_queue, machine, dlq, routes


def log_path(name):
    return os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), name)


def deploy_settings(routes, dlq, bus, secret):
    """The function's settings as a deployed stack gives them: its signing secret in Secrets Manager,
    and the whole configuration registered in moto's Lambda, where the operator tools read it."""
    secret_arn = client("secretsmanager").create_secret(Name=f"{FUNCTION}-signing-secret", SecretString=secret)["ARN"]
    settings = {"MOMENTO_SIGNING_SECRET_ID": secret_arn, "DEAD_LETTER_QUEUE_URL": dlq, "EVENT_BUS_NAME": bus}
    if routes:
        settings["ROUTES"] = json.dumps(routes)
    role = client("iam").create_role(RoleName=f"{FUNCTION}-role", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    client("lambda").create_function(FunctionName=FUNCTION, Runtime="provided.al2023", Handler="bootstrap", Role=role,
                                     Code={"ZipFile": b"PK\x05\x06" + bytes(18)}, Environment={"Variables": settings})
    return settings


def start_function(settings, port=None, log_name="demo-watch.log"):
    """`cargo lambda watch` serving the function at a Function URL on 127.0.0.1:port, with AWS at
    moto; returns once the function answers (the first start may compile it: progress is shown)."""
    heading("Starting the function behind a Function URL emulator (cargo lambda watch)")
    port = port or free_port()
    env = dict(os.environ, **AWS_ENV, **settings, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    log = open(log_path(log_name), "w")
    # Own process group: stopping `watch` alone would leave the function process running.
    watch = subprocess.Popen(
        ["cargo", "lambda", "watch", "--bin", "momento-webhook", "--ignore-changes",
         "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/lambda-url/momento-webhook/"
    wait_until_answering(watch, url, log.name)
    print(f"Function URL: {url}")
    return watch, url


def wait_until_answering(watch, url, log_name):
    """Polls the function with a GET (it answers 405) until it answers, showing what `cargo lambda
    watch` is compiling meanwhile, so a first start that builds the function neither times out
    a real request nor looks hung."""
    started, shown, deadline = time.time(), 0, time.time() + START_TIMEOUT_SECONDS
    while time.time() < deadline:
        if watch.poll() is not None:
            sys.exit(f"cargo lambda watch exited; see {log_name}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=5):
                pass
            return
        except urllib.error.HTTPError as answer:
            if answer.code == 405:
                if shown:
                    print(f"  the function answers ({time.time() - started:.0f} s)", flush=True)
                return
        except (urllib.error.URLError, OSError):
            pass
        with open(log_name) as log:
            compiling = [line.split()[1] for line in log if line.lstrip().startswith("Compiling")]
        for crate in compiling[shown:]:
            print(f"  compiling the function for cargo lambda watch: {crate}", flush=True)
        shown = len(compiling)
        time.sleep(1)
    sys.exit(f"the function did not answer within {START_TIMEOUT_SECONDS} s; see {log_name}")


def post(url, body: bytes, signature=None, method="POST"):
    headers = {"Content-Type": "application/json", "User-Agent": "Momento/1.0 (Webhooks; demo)"}
    if signature is not None:
        headers["momento-signature"] = signature
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=headers)
    try:
        # Momento's own deadline: the function is running by now, so 5 s is all it may take.
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except (urllib.error.URLError, OSError) as error:
        return None, {"error": f"no answer within Momento's 5 s ({error})"}


# What did not go as the demo expects; `make demo` fails when this is not empty.
problems = []


def expect(what, got, wanted):
    if got != wanted:
        problems.append(f"{what}: got {got!r}, expected {wanted!r}")


def sign(body: bytes, secret=SECRET):
    """Exactly what Momento does: lower-case hex HMAC-SHA3-256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha3_256).hexdigest()


def event(cache, topic, seq, text, age_ms=0):
    now = int(time.time() * 1000) - age_ms
    return json.dumps({"cache": cache, "topic": topic, "event_timestamp": now, "publish_timestamp": now,
                       "topic_sequence_number": seq, "token_id": "", "text": text}).encode()


def send_all(url):
    heading("Playing Momento: POSTing webhook events")
    checkout = event("orders", "checkout-eu", 42, json.dumps({"order_id": "A-1001", "total": 42.5}))
    cases = [
        ("chat message", event("chat", "lobby", 1, "hello from the lobby 👋"), sign, 200, "delivered"),
        ("order checkout", checkout, sign, 200, "delivered"),
        ("same checkout again (replay)", checkout, sign, 200, "duplicate"),
        ("audit event (bus missing)", event("audit", "logins", 7, json.dumps({"user": "ada"})), sign, 202, "dead_lettered"),
        ("forged signature", event("chat", "lobby", 2, "let me in"), lambda b: sign(b, "guessed-secret"), 401, "invalid_signature"),
        ("no signature", event("chat", "lobby", 3, "anyone there?"), lambda b: None, 401, "missing_signature"),
        ("stale (10 minutes old)", event("chat", "lobby", 4, "old news", age_ms=600_000), sign, 403, "stale_event"),
        ("malformed body", b'{"cache":"chat","topic":"lobby"}', sign, 400, "invalid_event"),
    ]
    for label, body, signer, status_wanted, outcome_wanted in cases:
        status, answer = post(url, body, signer(body))
        detail = {k: v for k, v in answer.items() if k != "message"}
        print(f"  {label:30} -> {status} {json.dumps(detail)}")
        if status is None or status >= 400:
            print(f"  {'':30}    {answer.get('message', '')}")
        expect(label, (status, answer.get("status") or answer.get("error")), (status_wanted, outcome_wanted))
    status, answer = post(url, b"", None, method="GET")
    print(f"  {'GET instead of POST':30} -> {status} {answer.get('error')}")
    expect("GET instead of POST", status, 405)


def show_results(target_queue, machine, dlq):
    heading("What arrived on the event bus (via the rule's SQS queue)")
    arrived = drain(target_queue)
    expect("events on the bus", len(arrived), 1)
    for message in arrived:
        e = json.loads(message["Body"])
        d = e["detail"]
        extra = f", text_json={json.dumps(d['text_json'])}" if "text_json" in d else ""
        print(f"  source={e['source']} detail-type={e['detail-type']} seq={d['topic_sequence_number']} text={d['text']!r}{extra}")
    heading("Step Functions executions of 'demo-fulfil'")
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    for execution in executions:
        arn = execution["executionArn"]
        for _ in range(50):
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.1)
        print(f"  {execution['name']}: {described['status']}, output {described.get('output')}")
    print(f"  ({len(executions)} execution for 2 deliveries of the same event: the replay was a duplicate)")
    expect("executions started", len(executions), 1)
    heading("Dead-letter queue")
    messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    expect("dead letters", len(messages), 1)
    for message in messages:
        letter = json.loads(message["Body"])
        print(f"  target={json.dumps(letter['target'])} error={letter['error']['code']} failed_at={letter['failed_at']}")
        print(f"    raw_body={letter['raw_body']}")


def redrive(target_queue, dlq):
    heading("Fixing the cause (creating the 'momento-demo-audit' bus) and redriving")
    events.create_event_bus(Name="momento-demo-audit")
    target_arn = sqs.get_queue_attributes(QueueUrl=target_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="audit-events", EventBusName="momento-demo-audit", EventPattern=json.dumps({"source": ["Momento"]}))
    events.put_targets(Rule="audit-events", EventBusName="momento-demo-audit", Targets=[{"Id": "queue", "Arn": target_arn}])
    # As an operator runs it: AWS credentials and a region, none of the function's settings; the
    # routing comes from the function's own configuration (here moto's Lambda).
    env = {k: v for k, v in os.environ.items() if k not in ("ROUTES", "EVENT_BUS_NAME", "EVENT_SOURCE", "DEAD_LETTER_QUEUE_URL")}
    env.update(AWS_ENV)
    command = [os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "webhook-ops"),
               "redrive", "--function", FUNCTION]
    print(f"  $ webhook-ops redrive --function {FUNCTION}")
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    for line in (result.stderr + result.stdout).splitlines():
        print(f"    {line}")
    expect("webhook-ops redrive exit status", result.returncode, 0)
    arrived = drain(target_queue)
    for message in arrived:
        e = json.loads(message["Body"])
        print(f"  arrived after redrive: detail-type={e['detail-type']} text={e['detail']['text']!r}")
    expect("events redriven to the audit bus", [json.loads(m["Body"])["detail-type"] for m in arrived], ["audit#logins"])
    left = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    print(f"  messages left in the dead-letter queue: {left['Attributes']['ApproximateNumberOfMessages']}")
    expect("messages left in the dead-letter queue", left["Attributes"]["ApproximateNumberOfMessages"], "0")


def metrics_table(log_name="demo-watch.log"):
    """What CloudWatch would show: the function's own EMF documents, counted per outcome."""
    heading("Metrics the function emitted (CloudWatch Embedded Metric Format, from its own output)")
    totals, reasons, latencies = {}, {}, []
    with open(log_path(log_name)) as log:
        for line in log:
            start = line.find('{"_aws"')
            if start < 0:
                continue
            document = json.loads(line[start:])
            names = [m["Name"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
            for name in names:
                if name not in ("DeliveryLatency", "HandlerDuration"):
                    totals[name] = totals.get(name, 0) + document[name]
            if "Reason" in document:
                reasons[document["Reason"]] = reasons.get(document["Reason"], 0) + 1
            if "DeliveryLatency" in document:
                latencies.append(document["DeliveryLatency"])
    namespace = "MomentoWebhooks"
    print(f"  namespace {namespace}, dimension FunctionName (plus Reason / Target)")
    for name in ["Received", "Delivered", "Duplicate", "Ignored", "Rejected", "DeadLettered", "Lost", "SecretRefreshed"]:
        print(f"  {name:16} {totals.get(name, 0):>4}")
    for reason, count in sorted(reasons.items()):
        print(f"    Reason={reason:22} {count:>4}")
    if latencies:
        print(f"  DeliveryLatency  {len(latencies)} values, max {max(latencies):.0f} ms (publish to delivered)")


def bin_path(name):
    return os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug", name)


def read_line_starting(stream, prefix, timeout=60):
    """The first line of `stream` that starts with `prefix`, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line.strip()
    sys.exit(f"no '{prefix}' line from the Momento stand-in")


def bridge_run(settings, seconds, log):
    """One run of the topic bridge, as the schedule starts it, for `seconds`; its report."""
    env = {**AWS_ENV, **settings, "BRIDGE_RUN_SECONDS": str(seconds), "PATH": os.environ["PATH"]}
    return subprocess.Popen([bin_path("momento-bridge")], env=env, stdout=subprocess.PIPE, stderr=log, text=True)


def bridge_report(run):
    output, _ = run.communicate(timeout=60)
    expect("topic bridge exit status", run.returncode, 0)
    reports = [json.loads(line) for line in output.splitlines() if line.startswith('{"topics"')]
    return reports[-1]["topics"][0] if reports else {}


def topic_bridge(target_queue, dlq, routes):
    heading("The topic bridge: Momento without webhooks (a Momento stand-in on 127.0.0.1)")
    client("dynamodb").create_table(
        TableName="demo-bridge-checkpoints", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "cache", "KeyType": "HASH"}, {"AttributeName": "topic", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "cache", "AttributeType": "S"}, {"AttributeName": "topic", "AttributeType": "S"}])
    # As Momento documents topics: fire and forget, nothing replayed to a later subscriber.
    standin = subprocess.Popen([bin_path("examples/momento_standin"), "--replay-nothing"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    _, endpoint, _, key = read_line_starting(standin.stdout, "endpoint ").split(" ")
    # Runs as if the schedule ticked every 3 s (a minute deployed), so that run 2 comes within the
    # last two ticks of run 1's stop and waits to succeed it.
    settings = {"BRIDGE_TOPICS": "news/releases", "MOMENTO_API_KEY": key, "MOMENTO_ENDPOINT": endpoint,
                "CHECKPOINT_TABLE": "demo-bridge-checkpoints", "ROUTES": json.dumps(routes), "DEAD_LETTER_QUEUE_URL": dlq,
                "AWS_LAMBDA_FUNCTION_NAME": "momento-bridge-demo", "BRIDGE_SCHEDULE_SECONDS": "3"}

    def publish(text):
        standin.stdin.write(f"publish news releases {text}\n")
        standin.stdin.flush()
        read_line_starting(standin.stdout, "published ")
        print(f"  published to news/releases: {text}")

    with open(log_path("demo-bridge.log"), "w") as log:
        try:
            print("run 1 (the topic's first: it owns the topic and reads what is published from now on)")
            run1 = bridge_run(settings, 6, log)
            read_line_starting(standin.stdout, "subscribed ")
            publish("v1.0 is out")
            publish('{"version":"1.1","notes":"faster"}')
            print("run 2 starts in run 1's last seconds, as the tick that succeeds it does: it subscribes and waits")
            run2 = bridge_run(settings, 10, log)
            read_line_starting(standin.stdout, "subscribed ")
            time.sleep(1)
            publish("v1.2, published while both are subscribed")
            report1 = bridge_report(run1)
            print(f"  run 1 report: {json.dumps(report1)}")
            expect("run 1 ended", report1.get("ended"), "handed_over")
            expect("run 1 items", report1.get("items"), 3)
            publish("v1.3, published after the hand-over")
            report2 = bridge_report(run2)
            print(f"  run 2 report: {json.dumps(report2)}")
            expect("run 2 items (from exactly where run 1 handed over)", report2.get("items"), 1)
        finally:
            standin.stdin.close()
            standin.wait(timeout=30)
    heading("What the bridge put on the event bus")
    arrived = [json.loads(m["Body"]) for m in drain(target_queue)]
    for e in arrived:
        d = e["detail"]
        print(f"  {e['detail-type']:16} page {d['topic_sequence_page']} seq {d['topic_sequence_number']}: {d['text']}")
    expect("bridged events on the bus, each once, in order",
           [e["detail"]["text"] for e in arrived],
           ["v1.0 is out", '{"version":"1.1","notes":"faster"}', "v1.2, published while both are subscribed",
            "v1.3, published after the hand-over"])


def drain(queue_url):
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return messages
        for m in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        messages.extend(batch)


def main():
    target_queue, machine, dlq, routes = setup()
    watch, url = start_function(deploy_settings(routes, dlq, "momento-demo", SECRET))
    try:
        send_all(url)
        show_results(target_queue, machine, dlq)
        redrive(target_queue, dlq)
        topic_bridge(target_queue, dlq, routes)
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        watch.wait(timeout=30)
    metrics_table()
    if problems:
        heading("Not as expected")
        for problem in problems:
            print(f"  {problem}")
        sys.exit(1)
    heading("Done")
    print("Every authentic event was delivered, started a workflow once, or was kept and redriven;")
    print("every forged, stale or malformed request was refused with a status and a reason;")
    print("and the topic bridge delivered what was published, across a hand-over between two runs, each message once.")


if __name__ == "__main__":
    main()
