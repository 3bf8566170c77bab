#!/usr/bin/env bash
# fail2ban's sshd filter on the same generated log, in the same run:
# fail2ban-regex (the peer) and `phalanx parse --fail2ban-filter` (the
# filter run with fail2ban's semantics), then phalanx's native sshd parser.
# Prints lines/s and the ratio. Needs Debian's fail2ban.
#   LINES=200000 bash bench/f2b-filter.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-200000}
filter=/etc/fail2ban/filter.d/sshd.conf
command -v fail2ban-regex >/dev/null || { echo "fail2ban-regex not found: apt-get install fail2ban" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/phalanx" ./cmd/phalanx
go run ./bench/loggen -kind sshd -lines "$LINES" -out "$work/auth.log"
n=$(wc -l <"$work/auth.log")
secs() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc -l; }
peer=$(secs fail2ban-regex "$work/auth.log" "$filter")
flt=$(secs "$work/phalanx" parse --fail2ban-filter "$filter" -o json "$work/auth.log")
native=$(secs "$work/phalanx" parse -t sshd --sshd-mode normal -o json "$work/auth.log")
printf '%s lines, filter sshd.conf (normal mode)\n' "$n"
printf 'fail2ban-regex:                    %8.0f lines/s\n' "$(echo "$n / $peer" | bc -l)"
printf 'phalanx parse --fail2ban-filter:   %8.0f lines/s  (%.1fx)\n' "$(echo "$n / $flt" | bc -l)" "$(echo "$peer / $flt" | bc -l)"
printf 'phalanx parse (native sshd):       %8.0f lines/s  (%.1fx)\n' "$(echo "$n / $native" | bc -l)" "$(echo "$peer / $native" | bc -l)"
