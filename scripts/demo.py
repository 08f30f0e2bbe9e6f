#!/usr/bin/env python3
"""`make demo`: the receiver end to end on this machine.

moto server (started by scripts/with-moto.sh) plays AWS; `cargo lambda watch` runs the function
behind a Function URL emulator; this script plays Momento, POSTing signed webhook events (and a
few bad ones), then shows where each one ended up, and redrives a dead-lettered one.
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


def start_function(routes, dlq, port=None, bus="momento-demo", secret=SECRET, log_name="demo-watch.log"):
    """`cargo lambda watch` serving the function at a Function URL on 127.0.0.1:port, with AWS at moto."""
    heading("Starting the function behind a Function URL emulator (cargo lambda watch)")
    port = port or free_port()
    env = dict(os.environ, **AWS_ENV, MOMENTO_SIGNING_SECRET=secret, DEAD_LETTER_QUEUE_URL=dlq,
               EVENT_BUS_NAME=bus, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    if routes:
        env["ROUTES"] = json.dumps(routes)
    log = open(log_path(log_name), "w")
    # Own process group: stopping `watch` alone would leave the function process running.
    watch = subprocess.Popen(
        ["cargo", "lambda", "watch", "--bin", "momento-webhook", "--ignore-changes",
         "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/lambda-url/momento-webhook/"
    deadline = time.time() + 300
    while time.time() < deadline:
        if watch.poll() is not None:
            sys.exit(f"cargo lambda watch exited; see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    print(f"Function URL: {url}")
    return watch, url


def post(url, body: bytes, signature=None, method="POST"):
    headers = {"Content-Type": "application/json", "User-Agent": "Momento/1.0 (Webhooks; demo)"}
    if signature is not None:
        headers["momento-signature"] = signature
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


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
        ("chat message", event("chat", "lobby", 1, "hello from the lobby 👋"), sign),
        ("order checkout", checkout, sign),
        ("same checkout again (replay)", checkout, sign),
        ("audit event (bus missing)", event("audit", "logins", 7, json.dumps({"user": "ada"})), sign),
        ("forged signature", event("chat", "lobby", 2, "let me in"), lambda b: sign(b, "guessed-secret")),
        ("no signature", event("chat", "lobby", 3, "anyone there?"), lambda b: None),
        ("stale (10 minutes old)", event("chat", "lobby", 4, "old news", age_ms=600_000), sign),
        ("malformed body", b'{"cache":"chat","topic":"lobby"}', sign),
    ]
    for label, body, signer in cases:
        status, answer = post(url, body, signer(body))
        detail = {k: v for k, v in answer.items() if k != "message"}
        print(f"  {label:30} -> {status} {json.dumps(detail)}")
        if status >= 400:
            print(f"  {'':30}    {answer.get('message', '')}")
    status, answer = post(url, b"", None, method="GET")
    print(f"  {'GET instead of POST':30} -> {status} {answer.get('error')}")


def show_results(target_queue, machine, dlq):
    heading("What arrived on the event bus (via the rule's SQS queue)")
    for message in drain(target_queue):
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
    heading("Dead-letter queue")
    messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    for message in messages:
        letter = json.loads(message["Body"])
        print(f"  target={json.dumps(letter['target'])} error={letter['error']['code']} failed_at={letter['failed_at']}")
        print(f"    raw_body={letter['raw_body']}")


def redrive(target_queue, dlq, routes):
    heading("Fixing the cause (creating the 'momento-demo-audit' bus) and redriving")
    events.create_event_bus(Name="momento-demo-audit")
    target_arn = sqs.get_queue_attributes(QueueUrl=target_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="audit-events", EventBusName="momento-demo-audit", EventPattern=json.dumps({"source": ["Momento"]}))
    events.put_targets(Rule="audit-events", EventBusName="momento-demo-audit", Targets=[{"Id": "queue", "Arn": target_arn}])
    env = dict(os.environ, **AWS_ENV, ROUTES=json.dumps(routes), EVENT_BUS_NAME="momento-demo")
    command = ["cargo", "run", "--quiet", "-p", "webhook-ops", "--", "redrive", "--queue-url", dlq]
    print(f"  $ webhook-ops redrive --queue-url {dlq}")
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    for line in (result.stderr + result.stdout).splitlines():
        print(f"    {line}")
    for message in drain(target_queue):
        e = json.loads(message["Body"])
        print(f"  arrived after redrive: detail-type={e['detail-type']} text={e['detail']['text']!r}")
    left = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    print(f"  messages left in the dead-letter queue: {left['Attributes']['ApproximateNumberOfMessages']}")


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
    watch, url = start_function(routes, dlq)
    try:
        send_all(url)
        show_results(target_queue, machine, dlq)
        redrive(target_queue, dlq, routes)
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        watch.wait(timeout=30)
    metrics_table()
    heading("Done")
    print("Every authentic event was delivered, started a workflow once, or was kept and redriven;")
    print("every forged, stale or malformed request was refused with a status and a reason.")


if __name__ == "__main__":
    main()
