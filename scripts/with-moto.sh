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
echo "with-moto: moto server on $MOTO_ENDPOINT (pid $moto_pid)" >&2
"$@"
