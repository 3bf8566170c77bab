#!/usr/bin/env bash
# Hostile input and flood figures for docs/reliability.md (issue 6): wall
# time and peak RSS (GNU time) of `phalanx replay` on
#
#   long   GIB GiB of lines around 1 MiB (the line cap): half just under it,
#          half just over, filled with NUL, ESC, bidi overrides and invalid
#          UTF-8; each under-cap line is a real sshd failure from one of 4
#          attackers. Expect: every line counted, the over-cap half cut,
#          bounded memory, the attackers decided on and nothing else.
#   flood  SOURCES distinct source addresses with one or two sshd failures
#          each (under every threshold), and among them ATTACKERS real brute
#          forcers whose six failures are spread through the flood. Expect:
#          memory bounded by the per-source cap (evictions counted), every
#          real attacker still decided on, no decision on the flood.
#
# Usage: bash bench/flood.sh [long|flood|all]
# Environment: GIB=1 SOURCES=1000000 ATTACKERS=1000 NICE=10
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
GIB=${GIB:-1}
SOURCES=${SOURCES:-1000000}
ATTACKERS=${ATTACKERS:-1000}
NICE=${NICE:-10}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/phalanx" ./cmd/phalanx
echo "# $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"

measure() { # name, then the command reading standard input
	local name=$1
	shift
	/usr/bin/time -f "$name: wall %e s, peak RSS %M KB, CPU %U s user %S s sys" nice -n "$NICE" "$@"
}

if [ "$what" = long ] || [ "$what" = all ]; then
	echo "== long: $GIB GiB of ~1 MiB hostile lines through phalanx replay -"
	python3 - "$GIB" <<'EOF' | measure long "$work/phalanx" replay -o table -t sshd - | tail -4
import sys
gib = int(sys.argv[1])
cap = 1 << 20
head = b"Nov 27 10:%02d:%02d web1 sshd[100]: Failed password for invalid user "
junk = (b"\x00\x1b[2J\xe2\x80\xae\xff\xfe" * (cap // 8))
out = sys.stdout.buffer
for i in range(gib * 1024):
    h = head % ((i // 60) % 60, i % 60)
    tail = b" from 203.0.113.%d port 4000 ssh2" % (i // 2 % 4)
    if i % 2 == 0:
        body = junk[: cap - len(h) - len(tail) - 1]  # under the cap: parsed
    else:
        body = junk[: cap + 4096]  # over the cap: cut, its address lost
    out.write(h + body + tail + b"\n")
EOF
	echo "expected: $((GIB * 1024)) lines, $((GIB * 512)) cut, decisions only against 203.0.113.0-3 (4 attackers)"
fi

if [ "$what" = flood ] || [ "$what" = all ]; then
	echo "== flood: $SOURCES distinct sources, $ATTACKERS real attackers among them, through phalanx replay -"
	python3 - "$SOURCES" "$ATTACKERS" <<'EOF' >"$work/flood.log"
import sys
sources, attackers = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
# One log second per 1000 lines; an attacker fails six times, 200 lines
# (0.2 s of log, 200 other sources) apart: within ssh-bf's minute.
base = 100 << 24 | 64 << 16  # 100.64.0.0/10: the flood
line = 0
def emit(addr, user):
    global line
    t = line // 1000
    out.write("Nov 27 %02d:%02d:%02d web1 sshd[100]: Failed password for invalid user %s from %s port 4000 ssh2\n"
              % (t // 3600 % 24, t // 60 % 60, t % 60, user, addr))
    line += 1
every = max(sources // max(attackers, 1), 1)
pending = []  # (attacker index, failures left)
for i in range(sources):
    a = base + i
    emit("%d.%d.%d.%d" % (a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255), "u%d" % (i % 7))
    if i % 3 == 0:  # a second failure from some: still under every threshold
        emit("%d.%d.%d.%d" % (a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255), "v")
    if attackers and i % every == 0 and i // every < attackers:
        pending.append([i // every, 6])
    if i % 200 == 0:
        for p in pending:
            emit("198.18.%d.%d" % (p[0] >> 8, p[0] & 255), "root")
            p[1] -= 1
        pending = [p for p in pending if p[1] > 0]
while pending:
    for p in pending:
        emit("198.18.%d.%d" % (p[0] >> 8, p[0] & 255), "root")
        p[1] -= 1
    pending = [p for p in pending if p[1] > 0]
EOF
	echo "$(wc -l <"$work/flood.log") lines, $(du -m "$work/flood.log" | cut -f1) MB"
	measure flood "$work/phalanx" replay -o json -t sshd - <"$work/flood.log" >"$work/flood.json"
	echo "decisions: $(wc -l <"$work/flood.json") (expected $ATTACKERS, all in 198.18.0.0/15)"
	echo "decisions on the flood (100.64.0.0/10, must be 0): $(grep -c '"value":"100\.' "$work/flood.json" || true)"
	echo "attackers decided on: $(grep -o '"value":"198\.18\.[0-9.]*"' "$work/flood.json" | sort -u | wc -l) of $ATTACKERS"
	measure flood-table "$work/phalanx" replay -o table -t sshd - <"$work/flood.log" | tail -3
fi
