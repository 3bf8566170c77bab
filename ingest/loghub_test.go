package ingest_test

import (
	"net/netip"
	"testing"

	"github.com/phalanx-defence/phalanx/internal/corpus"
	"github.com/phalanx-defence/phalanx/parse"
)

// TestLoghubOpenSSH replays Loghub's real OpenSSH sample: the obvious
// brute-forcers (hundreds of failures each) must be decided, and the
// address of the sample's one successful login must not be.
func TestLoghubOpenSSH(t *testing.T) {
	got := replayFile(t, corpus.Path(t, "loghub", "OpenSSH", "OpenSSH_2k.log"), parse.Auto)
	decided := map[netip.Addr]bool{}
	for _, d := range got {
		decided[d.Value.Addr()] = true
		if d.Value.Contains(netip.MustParseAddr("119.137.62.142")) {
			t.Errorf("the successful login's address is decided: %s by %s", d.ValueString(), d.Scenario)
		}
	}
	for _, s := range []string{"183.62.140.253", "187.141.143.180", "103.99.0.122", "112.95.230.3", "5.188.10.180", "185.190.58.151"} {
		if !decided[netip.MustParseAddr(s)] {
			t.Errorf("brute-forcer %s not decided", s)
		}
	}
	t.Logf("%d decisions on the Loghub OpenSSH sample", len(got))
}
