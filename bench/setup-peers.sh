#!/usr/bin/env bash
# Installs the peers bench/run.sh measures phalanx against, on Debian 12,
# offline-friendly. Run as root; safe to run again.
#
#   fail2ban  1.0.2   fail2ban-regex
#   sshguard  2.4.2   /usr/libexec/sshguard/sshg-parser
#   crowdsec  1.4.6   crowdsec -dsn file://... -no-api (replay mode)
#   time              GNU time, for peak RSS
#
# CrowdSec's postinst registers the machine with CrowdSec's Central API
# (`cscli capi register`) when /etc/crowdsec/online_api_credentials.yaml
# is empty; without internet access that fails and leaves the package
# half-configured (dpkg -l shows iF). README.Debian documents the way
# out: put a comment in that file before configuring, and the
# registration is skipped. Everything else the benchmark needs ships in
# the package (the offline hub under /usr/share/crowdsec/hub and its data
# files under /usr/share/crowdsec/data); bench/run.sh builds its own
# throwaway configuration from them, so no service is started and no
# firewall is touched.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "setup-peers.sh: run as root (it installs Debian packages)" >&2
	exit 1
fi

capi=/etc/crowdsec/online_api_credentials.yaml
mkdir -p /etc/crowdsec
if [ ! -s "$capi" ]; then
	echo "# offline: no Central API registration (phalanx bench/setup-peers.sh)" >"$capi"
fi

export DEBIAN_FRONTEND=noninteractive
pkgs="time fail2ban sshguard crowdsec"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update
	# The install may end with crowdsec half-configured if the comment
	# above was not in place; dpkg --configure -a finishes it.
	apt-get install -y --no-install-recommends $pkgs || true
	dpkg --configure -a
fi
# Where systemd runs, Debian starts fail2ban, sshguard and crowdsec as
# services; the benchmark does not need them (run.sh only runs their
# offline tools), and this script leaves the host's services and firewall
# alone.

dpkg-query -W -f='${Package} ${Version} ${Status}\n' time fail2ban sshguard crowdsec
test -x /usr/libexec/sshguard/sshg-parser
test -f /usr/share/crowdsec/hub/.index.json
echo "setup-peers.sh: peers ready"
