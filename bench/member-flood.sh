#!/usr/bin/env bash
# Measures an alliance member (`phalanx up --data DIR`) under a flood of
# distinct attacking addresses: one failed ssh password from each of
# SOURCES addresses (100.64.0.0/10), appended to the log it follows.
# Reports the wall time until every line is processed (its saved offset
# reaches the end of the log: offsets cover processed lines only), the
# member's peak RSS (VmHWM) and the detection state it kept (from its
# /metrics), so that anyone can check that memory stays bounded.
#
# Usage: bash bench/member-flood.sh
#
# Environment:
#   SOURCES=1000000   distinct addresses (one line each)
#   KIND=password     password: a failed password each (below every
#                     threshold: detection state only); refused: a
#                     refused connection each (a trigger: one decision and
#                     one report per address)
#   KEEP=1            keep the work directory
set -euo pipefail

cd "$(dirname "$0")/.."
SOURCES=${SOURCES:-1000000}
KIND=${KIND:-password}
work=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	if [ "${KEEP:-}" = 1 ]; then echo "work directory: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

go build -o "$work/phalanx" ./cmd/phalanx
bin=$work/phalanx
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" alliance init --name flood --data "$work/m" --nats-listen "127.0.0.1:$port" >/dev/null

awk -v n="$SOURCES" -v kind="$KIND" -v stamp="$(LC_ALL=C date '+%b %e %H:%M:%S')" 'BEGIN {
	for (i = 0; i < n; i++) {
		a = sprintf("100.%d.%d.%d", 64 + int(i / 65536) % 64, int(i / 256) % 256, i % 256)
		if (kind == "refused")
			printf "%s web1 sshd[%d]: refused connect from %s (%s)\n", stamp, 1000 + i % 30000, a, a
		else
			printf "%s web1 sshd[%d]: Failed password for root from %s port %d ssh2\n", stamp, 1000 + i % 30000, a, 1024 + i % 60000
	}
}' > "$work/auth.log"
size=$(stat -c %s "$work/auth.log")

"$bin" up --data "$work/m" --source "$work/auth.log" --from-start --log-level warn 2>"$work/up.err" &
pid=$!
start=$(date +%s.%N)
offsets=""
peak=0
for _ in $(seq 1 3000); do # bounded: 10 minutes
	kill -0 "$pid" 2>/dev/null || { echo "phalanx up died:"; cat "$work/up.err"; exit 1; }
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
	[ "$hwm" -gt "$peak" ] && peak=$hwm
	[ -z "$offsets" ] && offsets=$(ls "$work"/m/state/files-*/file-offsets.json 2>/dev/null | head -1 || true)
	if [ -n "$offsets" ]; then
		off=$(python3 -c 'import json,sys; f=json.load(open(sys.argv[1]))["files"]; print(f[0]["offset"] if f else 0)' "$offsets" 2>/dev/null || echo 0)
		[ "$off" = "$size" ] && break
	fi
	sleep 0.2
done
end=$(date +%s.%N)
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
[ "$hwm" -gt "$peak" ] && peak=$hwm
metrics=$(curl -s -H "Authorization: Bearer $(cat "$work/m/api.token")" "http://$(cat "$work/m/api.addr")/metrics" | grep -E '^phalanx_(detection_states|source_lines_read|decisions_in_force|envelopes_sent)' || true)
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
[ "$hwm" -gt "$peak" ] && peak=$hwm
echo "member flood: $SOURCES distinct sources ($KIND), $(numfmt --to=iec "$size") of log"
echo "  processed in $(python3 -c "print(round($end - $start, 1))") s (saved offset $off of $size)"
echo "  peak RSS $((peak / 1024)) MB, RSS at the end $((rss / 1024)) MB"
echo "$metrics" | sed 's/^/  /'
echo "  flagged by the alliance (rate limit): $(grep -c 'member flagged' "$work/up.err" || true) times"
