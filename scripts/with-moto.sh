#!/usr/bin/env bash
# Runs a command with fresh moto servers (local AWS API emulator) on 127.0.0.1, on free ports,
# and stops them afterwards, also when the command fails or is interrupted. The command sees
# MOTO_ENDPOINT=http://127.0.0.1:<port> (the first) and MOTO_ENDPOINTS (all, space-separated):
# MOTO_SERVERS of them (default 1; `make test` runs 3: one server answers one request at a time,
# and the test processes that run side by side spread over them).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"
[ -x "$venv/bin/moto_server" ] || { echo "with-moto: $venv/bin/moto_server missing; run through make" >&2; exit 2; }
serve="$here/scripts/moto_server.py"


servers=${MOTO_SERVERS:-1}
pids=()
logs=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f "${logs[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

endpoints=()
for _ in $(seq 1 "$servers"); do
  port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log=$(mktemp -t moto-XXXXXX.log)
  "$venv/bin/python" "$serve" "$port" >"$log" 2>&1 &
  pids+=($!)
  logs+=("$log")
  endpoints+=("http://127.0.0.1:$port")
done

# Each server up, then every service the suite uses touched once: moto loads each service's code
# on first use, which can take longer than the function's per-request time budget on a busy
# machine.
for i in "${!endpoints[@]}"; do
  MOTO_ENDPOINT=${endpoints[$i]}
  for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('$MOTO_ENDPOINT/moto-api/data.json', timeout=1)" 2>/dev/null; then
      break
    fi
    kill -0 "${pids[$i]}" 2>/dev/null || { echo "with-moto: moto server exited:" >&2; cat "${logs[$i]}" >&2; exit 1; }
    sleep 0.1
  done
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
done
export MOTO_ENDPOINT=${endpoints[0]}
export MOTO_ENDPOINTS="${endpoints[*]}"
# A test whose time bounds a shared server would break starts its own: this Python, this script.
export MOTO_PYTHON="$venv/bin/python"
export MOTO_SERVE="$serve"
echo "with-moto: moto servers on ${endpoints[*]} (pids ${pids[*]})" >&2
"$@"
