#!/usr/bin/env python3
"""`make watch`: the function served locally at a Function URL, against a local AWS emulator.

moto server (started by scripts/with-moto.sh) plays AWS with an event bus "momento-local"
whose rule copies every event into an SQS queue, and a dead-letter queue. `cargo lambda watch`
serves the function at http://127.0.0.1:9000/lambda-url/momento-webhook/ (rebuilding it when the
code changes), signed with the documented test secret unless MOMENTO_SIGNING_SECRET is set. Every
event that reaches the bus is printed here. Send one with `make invoke` from another terminal.
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo import client, deploy_settings, drain, heading, start_function  # noqa: E402

PORT = int(os.environ.get("WATCH_PORT", "9000"))
SECRET = os.environ.get("MOMENTO_SIGNING_SECRET") or "momento-webhook-test-secret"
BUS = "momento-local"


def setup():
    events, sqs = client("events"), client("sqs")
    events.create_event_bus(Name=BUS)
    queue = sqs.create_queue(QueueName="momento-local-bus-target")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="everything", EventBusName=BUS, EventPattern=json.dumps({"source": ["Momento"]}))
    events.put_targets(Rule="everything", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
    dlq = sqs.create_queue(QueueName="momento-local-dead-letters.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    return queue, dlq


def main():
    queue, dlq = setup()
    watch, url = start_function(deploy_settings(None, dlq, BUS, SECRET), port=PORT, log_name="watch.log")
    print(f"Function URL: {url}  (log: target/watch.log)")
    print(f"Signing secret: {'$MOMENTO_SIGNING_SECRET' if os.environ.get('MOMENTO_SIGNING_SECRET') else SECRET + ' (the documented test secret)'}")
    print("In another terminal: make invoke   (or: webhook-ops smoke --url " + url + ")")
    print("Events on the bus appear below; Ctrl-C stops everything.")
    stop = lambda *_: (_ for _ in ()).throw(KeyboardInterrupt)  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    try:
        while watch.poll() is None:
            for message in drain(queue):
                event = json.loads(message["Body"])
                detail = event["detail"]
                print(f"  on the bus: detail-type={event['detail-type']} seq={detail['topic_sequence_number']} text={detail['text']!r}", flush=True)
            for message in drain(dlq):
                letter = json.loads(message["Body"])
                print(f"  dead-lettered: {letter['error']['code']}: {letter['error']['message']}", flush=True)
            time.sleep(0.5)
        sys.exit("cargo lambda watch stopped; see target/watch.log")
    except KeyboardInterrupt:
        heading("Stopping")
    finally:
        if watch.poll() is None:
            os.killpg(watch.pid, signal.SIGTERM)
            watch.wait(timeout=30)


if __name__ == "__main__":
    main()
