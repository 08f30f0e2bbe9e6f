#!/usr/bin/env bash
# Runs a command with a fresh moto server (local AWS API emulator) on 127.0.0.1, on a free
# port, and stops it afterwards, also when the command fails or is interrupted.
# The command sees MOTO_ENDPOINT=http://127.0.0.1:<port>.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"
[ -x "$venv/bin/moto_server" ] || { echo "with-moto: $venv/bin/moto_server missing; run through make" >&2; exit 2; }

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t moto-XXXXXX.log)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
cleanup() {
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export MOTO_ENDPOINT="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('$MOTO_ENDPOINT/moto-api/data.json', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$moto_pid" 2>/dev/null || { echo "with-moto: moto server exited:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
# moto loads each service's code on first use, which can take longer than the function's
# per-request time budget on a busy machine: touch every service the suite uses once.
"$venv/bin/python" - <<PY
import boto3
kwargs = dict(endpoint_url="$MOTO_ENDPOINT", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
boto3.client("events", **kwargs).list_event_buses()
boto3.client("sqs", **kwargs).list_queues()
sfn = boto3.client("stepfunctions", **kwargs)
sfn.list_state_machines()
boto3.client("secretsmanager", **kwargs).list_secrets()
boto3.client("cloudformation", **kwargs).list_stacks()
boto3.client("sns", **kwargs).list_topics()
boto3.client("lambda", **kwargs).list_functions()
boto3.client("iam", **kwargs).list_roles()
# The state machine interpreter is the slowest to load: run one tiny execution, then put the
# server back to its default of not executing state machines.
import json, time, urllib.request
def configure(execute):
    body = json.dumps({"stepfunctions": {"execute_state_machine": execute}}).encode()
    urllib.request.urlopen(urllib.request.Request("$MOTO_ENDPOINT/moto-api/config", data=body, method="POST", headers={"Content-Type": "application/json"}))
configure(True)
machine = sfn.create_state_machine(name="with-moto-warm-up", roleArn="arn:aws:iam::123456789012:role/warm-up",
    definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
for _ in range(100):
    if sfn.describe_execution(executionArn=execution)["status"] != "RUNNING":
        break
    time.sleep(0.05)
configure(False)
PY
echo "with-moto: moto server on $MOTO_ENDPOINT (pid $moto_pid)" >&2
"$@"
