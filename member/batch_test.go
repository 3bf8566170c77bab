package member

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/ledger"
)

// TestBurstOfReportsLeavesInBatches: reports queued together leave in
// KindReports envelopes, one signature for many; every report reaches the
// ledger once and is folded; reports too long to fit one envelope
// together are split over several, none lost.
func TestBurstOfReportsLeavesInBatches(t *testing.T) {
	d := filepath.Join(t.TempDir(), "m")
	if _, err := Init(d, "batch", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := start(t, d)
	const n = 300 // under the charter's default 600 a minute
	now := time.Now().UTC()
	dones := make([]chan published, n)
	for i := range n {
		dones[i] = make(chan published, 1)
		// 400 bytes of evidence each: 256 of them do not fit one
		// envelope, so the publisher must split.
		r.m.send(t.Context(), outgoing{kind: ledger.KindReport, done: dones[i], body: ledger.Report{
			Value: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32), Type: phalanx.Ban,
			Scenario: "ssh-bf", Duration: time.Hour, FirstSeen: now, LastSeen: now, Events: 6,
			Evidence: []string{strings.Repeat("e", 400)},
		}})
	}
	seqs := map[uint64]int{}
	for i, done := range dones {
		select {
		case p := <-done:
			if p.err != nil {
				t.Fatalf("report %d: %v", i, p.err)
			}
			seqs[p.Seq]++
		case <-time.After(deadline):
			t.Fatalf("report %d not published", i)
		}
	}
	if len(seqs) >= n/2 {
		t.Errorf("%d reports left in %d envelopes: not batched", n, len(seqs))
	}
	for seq, k := range seqs {
		if k > ledger.MaxReports {
			t.Errorf("envelope %d carries %d reports, more than %d", seq, k, ledger.MaxReports)
		}
	}
	got := reportsByValue(t, d)
	if len(got) != n {
		t.Errorf("%d distinct values reported, want %d", len(got), n)
	}
	for v, k := range got {
		if k != 1 {
			t.Errorf("%s reported %d times", v, k)
		}
	}
	if _, err := VerifyLedger(t.Context(), d, nil, func(e VerifiedEntry) {
		if !e.Accepted || e.Refused > 0 {
			t.Errorf("entry %d (%s) refused: %s (%d reports of a batch)", e.Seq, e.Kind, e.Reason, e.Refused)
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reports in %d envelopes", n, len(seqs))
}
