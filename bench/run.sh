#!/usr/bin/env bash
# Measures phalanx against its peers on the same generated logs, in the
# same run: wall time and peak RSS (GNU time) for
#
#   phalanx replay (sshd, nginx)       the product
#   grep -c                            the floor: reading the file
#   sshg-parser < FILE                 sshguard's parser (sshd only)
#   fail2ban-regex FILE sshd           fail2ban (nginx: nginx-botsearch)
#   crowdsec -dsn file://FILE -no-api  CrowdSec's replay mode (sshd: -type syslog, nginx: -type nginx)
#
# Usage: bash bench/setup-peers.sh && bash bench/run.sh
#
# Environment:
#   LINES=1000000     lines per generated log
#   SEED=1            loggen seed
#   SLOW_LINES=0      fail2ban-regex reads only the first SLOW_LINES lines
#                     of the same files (it manages a few thousand lines a
#                     second); 0 = the whole file
#   CROWDSEC_LINES=20000  the same for crowdsec, slower still (on nginx a
#                     few hundred lines a second here); 0 = the whole file
#   KEEP=1            keep the work directory (logs, outputs)
# A peer that is not installed is skipped with a message.
set -euo pipefail

cd "$(dirname "$0")/.."
LINES=${LINES:-1000000}
SEED=${SEED:-1}
SLOW_LINES=${SLOW_LINES:-0}
CROWDSEC_LINES=${CROWDSEC_LINES:-20000}
if [ "$SLOW_LINES" = 0 ] || [ "$SLOW_LINES" -gt "$LINES" ]; then
	SLOW_LINES=$LINES
fi
if [ "$CROWDSEC_LINES" = 0 ] || [ "$CROWDSEC_LINES" -gt "$LINES" ]; then
	CROWDSEC_LINES=$LINES
fi

TIME=/usr/bin/time
if ! "$TIME" -f '%e %M' true >/dev/null 2>&1; then
	echo "run.sh: GNU time is missing: apt-get install time (or bash bench/setup-peers.sh)" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/phalanx-bench.XXXXXX")
lapi_pid=
cleanup() {
	if [ -n "$lapi_pid" ]; then
		kill "$lapi_pid" 2>/dev/null || true
		wait "$lapi_pid" 2>/dev/null || true
	fi
	if [ "${KEEP:-}" = 1 ]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }

# ---- build and generate ----

go build -o "$work/loggen" ./bench/loggen
phalanx=
if go build -o "$work/phalanx" ./cmd/phalanx 2>"$work/phalanx-build.err"; then
	phalanx=$work/phalanx
else
	say "SKIP phalanx: ./cmd/phalanx does not build:"
	sed 's/^/    /' "$work/phalanx-build.err" >&2
fi

say "generating $LINES-line sshd and nginx logs (seed $SEED)"
"$work/loggen" -kind sshd -lines "$LINES" -seed "$SEED" -out "$work/auth.log" -truth "$work/auth.truth.json"
"$work/loggen" -kind nginx -lines "$LINES" -seed "$SEED" -out "$work/access.log" -truth "$work/access.truth.json"
declare -A file lines slowfile slowlines csfile cslines
file[sshd]=$work/auth.log
file[nginx]=$work/access.log
for k in sshd nginx; do
	lines[$k]=$(wc -l <"${file[$k]}")
	if [ "$SLOW_LINES" -lt "${lines[$k]}" ]; then
		slowfile[$k]=$work/$k.head.log
		head -n "$SLOW_LINES" "${file[$k]}" >"${slowfile[$k]}"
	else
		slowfile[$k]=${file[$k]}
	fi
	slowlines[$k]=$(wc -l <"${slowfile[$k]}")
	if [ "$CROWDSEC_LINES" -lt "${lines[$k]}" ]; then
		csfile[$k]=$work/$k.crowdsec.log
		head -n "$CROWDSEC_LINES" "${file[$k]}" >"${csfile[$k]}"
	else
		csfile[$k]=${file[$k]}
	fi
	cslines[$k]=$(wc -l <"${csfile[$k]}")
done

# ---- measuring ----

results=()
n=0
# measure NAME KIND LINES DETAIL-COMMAND -- COMMAND...: runs COMMAND under
# GNU time with its output in a file, then DETAIL-COMMAND (a shell snippet
# reading $out) for a one-line summary of what the tool found.
measure() {
	local name=$1 kind=$2 nl=$3 detail=$4
	shift 5
	n=$((n + 1))
	local out=$work/out.$n err=$work/err.$n
	say "running $name on $nl $kind lines"
	if ! "$TIME" -f '%e %M' -o "$work/time.$n" "$@" >"$out" 2>"$err"; then
		say "  $name failed (exit status above); last lines of its stderr:"
		tail -n 5 "$err" | sed 's/^/    /' >&2
		return 0
	fi
	local secs kb
	read -r secs kb <"$work/time.$n"
	local found
	found=$(out=$out bash -c "$detail" 2>/dev/null | head -n 1 || true)
	results+=("$name|$kind|$nl|$secs|$kb|$found")
}

for k in sshd nginx; do
	f=${file[$k]}
	if [ -n "$phalanx" ]; then
		measure "phalanx replay" "$k" "${lines[$k]}" 'echo "$(wc -l <"$out") decisions"' -- \
			"$phalanx" replay --type "$k" -o json "$f"
		measure "phalanx parse" "$k" "${lines[$k]}" 'tail -n 1 "$out"' -- \
			"$phalanx" parse --type "$k" "$f"
	fi
	if [ "$k" = sshd ]; then
		measure "grep -c" "$k" "${lines[$k]}" 'echo "$(cat "$out") Failed password"' -- grep -c "Failed password" "$f"
	else
		measure "grep -c" "$k" "${lines[$k]}" 'echo "$(cat "$out") 404s"' -- grep -c '" 404 ' "$f"
	fi
done

sshg=/usr/libexec/sshguard/sshg-parser
if [ -x "$sshg" ]; then
	measure "sshg-parser" sshd "${lines[sshd]}" 'echo "$(wc -l <"$out") attacks"' -- "$sshg" <"${file[sshd]}"
else
	say "SKIP sshguard: $sshg not found (apt-get install sshguard, or bash bench/setup-peers.sh)"
fi

if command -v fail2ban-regex >/dev/null; then
	measure "fail2ban-regex" sshd "${slowlines[sshd]}" 'grep -m1 "^Lines:" "$out"' -- \
		fail2ban-regex "${slowfile[sshd]}" sshd
	measure "fail2ban-regex" nginx "${slowlines[nginx]}" 'grep -m1 "^Lines:" "$out"' -- \
		fail2ban-regex "${slowfile[nginx]}" nginx-botsearch
else
	say "SKIP fail2ban: fail2ban-regex not found (apt-get install fail2ban, or bash bench/setup-peers.sh)"
fi

# CrowdSec's replay mode still sends its alerts to a local API, so one
# runs for the duration, on loopback, with its own throwaway
# configuration built from the offline hub Debian ships: the parsers and
# scenarios a default Debian install enables (the symlinks under
# /etc/crowdsec), nothing downloaded.
crowdsec_setup() {
	local d=$work/crowdsec
	if ! command -v crowdsec >/dev/null || ! command -v cscli >/dev/null; then
		say "SKIP crowdsec: not installed (bash bench/setup-peers.sh)"
		return 1
	fi
	if [ ! -d /etc/crowdsec/scenarios ] || [ ! -d /usr/share/crowdsec/hub ]; then
		say "SKIP crowdsec: the package is not configured (dpkg -l crowdsec; run bash bench/setup-peers.sh)"
		return 1
	fi
	mkdir -p "$d/etc" "$d/data"
	local f rel
	for f in /etc/crowdsec/parsers/*/*.yaml /etc/crowdsec/postoverflows/*/*.yaml /etc/crowdsec/scenarios/*.yaml /etc/crowdsec/collections/*.yaml; do
		[ -e "$f" ] || continue
		rel=${f#/etc/crowdsec/}
		mkdir -p "$d/etc/$(dirname "$rel")"
		ln -s "$(readlink -f "$f")" "$d/etc/$rel"
	done
	cp -r /etc/crowdsec/patterns "$d/etc/"
	cp /etc/crowdsec/profiles.yaml /etc/crowdsec/simulation.yaml "$d/etc/"
	cp /usr/share/crowdsec/data/* "$d/data/"
	# The path traversal scenario names its data file differently from
	# the copy Debian ships; without it the scenario would not load.
	if [ -f "$d/data/path_traversal.txt" ] && [ ! -f "$d/data/http_path_traversal.txt" ]; then
		cp "$d/data/path_traversal.txt" "$d/data/http_path_traversal.txt"
	fi
	: >"$d/acquis.yaml"
	local port=$((20000 + RANDOM % 20000))
	cat >"$d/config.yaml" <<-EOF
		common:
		  daemonize: false
		  log_media: file
		  log_dir: $d/
		  log_level: warning
		config_paths:
		  config_dir: $d/etc/
		  data_dir: $d/data/
		  simulation_path: $d/etc/simulation.yaml
		  hub_dir: /usr/share/crowdsec/hub/
		  index_path: /usr/share/crowdsec/hub/.index.json
		crowdsec_service:
		  acquisition_path: $d/acquis.yaml
		  parser_routines: 1
		db_config:
		  type: sqlite
		  db_path: $d/data/crowdsec.db
		  use_wal: true
		api:
		  client:
		    credentials_path: $d/lapi.yaml
		  server:
		    listen_uri: 127.0.0.1:$port
		    profiles_path: $d/etc/profiles.yaml
		prometheus:
		  enabled: false
	EOF
	cscli -c "$d/config.yaml" --error machines add bench --auto --force -f "$d/lapi.yaml" >/dev/null
	crowdsec -c "$d/config.yaml" -no-cs >"$d/lapi.out" 2>&1 &
	lapi_pid=$!
	local i
	for i in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.2
	done
	say "SKIP crowdsec: its local API did not start on 127.0.0.1:$port:"
	tail -n 5 "$d/crowdsec.log" "$d/lapi.out" >&2 || true
	return 1
}

if crowdsec_setup; then
	cs=$work/crowdsec/config.yaml
	for k in sshd nginx; do
		typ=syslog
		[ "$k" = nginx ] && typ=nginx
		cscli -c "$cs" --error alerts delete --all >/dev/null 2>&1 || true
		measure "crowdsec replay" "$k" "${cslines[$k]}" \
			"echo \"\$(cscli -c '$cs' --error alerts list -l 0 -o raw | tail -n +2 | wc -l) alerts\"" -- \
			crowdsec -c "$cs" -dsn "file://${csfile[$k]}" -type "$typ" -no-api
	done
fi

# ---- report ----

cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "machine: $(nproc) CPUs, $cpu; $(uname -sr)"
echo "logs: loggen seed $SEED, sshd ${lines[sshd]} lines, nginx ${lines[nginx]} lines; fail2ban-regex reads the first ${slowlines[sshd]}/${slowlines[nginx]}, crowdsec the first ${cslines[sshd]}/${cslines[nginx]}"
echo
printf '| %-15s | %-5s | %9s | %8s | %12s | %8s | %s |\n' tool log lines seconds lines/s "RSS MB" "found"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ----------------- ------- ----------- ---------- -------------- ---------- ------
declare -A lps
for r in "${results[@]}"; do
	IFS='|' read -r name kind nl secs kb found <<<"$r"
	rate=$(awk -v n="$nl" -v s="$secs" 'BEGIN { if (s < 0.01) s = 0.01; printf "%.0f", n / s }')
	lps["$name/$kind"]=$rate
	printf '| %-15s | %-5s | %9d | %8.2f | %12s | %8.1f | %s |\n' "$name" "$kind" "$nl" "$secs" \
		"$(printf "%'d" "$rate" 2>/dev/null || echo "$rate")" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')" "$found"
done

echo
if [ -n "${lps[phalanx replay/sshd]:-}" ]; then
	echo "ratios (phalanx replay lines/s ÷ peer lines/s, same log kind):"
	for r in "${results[@]}"; do
		IFS='|' read -r name kind _ <<<"$r"
		case $name in phalanx*) continue ;; esac
		p=${lps["phalanx replay/$kind"]:-}
		[ -n "$p" ] || continue
		awk -v p="$p" -v q="${lps[$name/$kind]}" -v n="$name" -v k="$kind" \
			'BEGIN { printf "  %-16s %-5s %10.1fx\n", n, k, p / q }'
	done
	echo
	echo "targets:"
	check() { # check LABEL VALUE OP LIMIT
		if awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { exit !((op == ">=" && v >= l) || (op == "<" && v < l)) }'; then
			echo "  PASS $1 ($2 $3 $4)"
		else
			echo "  MISS $1 ($2, want $3 $4)"
		fi
	}
	check "phalanx sshd lines/s" "${lps[phalanx replay/sshd]}" ">=" 1000000
	[ -n "${lps[phalanx replay/nginx]:-}" ] && check "phalanx nginx lines/s" "${lps[phalanx replay/nginx]}" ">=" 500000
	for r in "${results[@]}"; do
		IFS='|' read -r name kind _ _ kb _ <<<"$r"
		[ "$name" = "phalanx replay" ] && check "phalanx replay $kind peak RSS MB" "$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')" "<" 100
	done
	[ -n "${lps[sshg-parser/sshd]:-}" ] && check "phalanx ÷ sshg-parser" "$(awk -v p="${lps[phalanx replay/sshd]}" -v q="${lps[sshg-parser/sshd]}" 'BEGIN { printf "%.1f", p / q }')" ">=" 2
	[ -n "${lps[fail2ban-regex/sshd]:-}" ] && check "phalanx ÷ fail2ban-regex (sshd)" "$(awk -v p="${lps[phalanx replay/sshd]}" -v q="${lps[fail2ban-regex/sshd]}" 'BEGIN { printf "%.1f", p / q }')" ">=" 60
	true
fi
