package member

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/alliance"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/natsbus"
)

// TestVerifyLedger checks a healthy ledger, then one into which a forger
// and a replayer wrote straight through NATS, as anyone holding the
// stream's credentials could.
func TestVerifyLedger(t *testing.T) {
	ctx := t.Context()
	now := time.Now()
	d1 := filepath.Join(t.TempDir(), "founder")
	info, err := Init(d1, "verify alliance", "127.0.0.1:0", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	m1 := start(t, d1)
	c1, err := Client(d1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.AddDecision(ctx, DecisionRequest{Value: "192.0.2.7", Duration: "1h", Reason: "\x1b[31mred\x1b[0m"}); err != nil {
		t.Fatal(err)
	}

	var entries []VerifiedEntry
	rep, err := VerifyLedger(ctx, d1, nil, func(e VerifiedEntry) { entries = append(entries, e) })
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Entries < 2 || rep.Accepted != rep.Entries || rep.Tampered != 0 || rep.Authors != 1 || uint64(len(entries)) != rep.Entries {
		t.Fatalf("healthy ledger: %+v, %d entries seen", rep, len(entries))
	}
	var manual []byte
	for _, e := range entries {
		if e.Kind == ledger.KindManual {
			if strings.Contains(e.Summary, "\x1b") || !strings.Contains(e.Summary, "192.0.2.7/32") {
				t.Errorf("manual summary %q: want the value and no raw escape", e.Summary)
			}
			manual = readEntry(t, info, e.Seq)
		}
	}
	if manual == nil {
		t.Fatalf("no manual entry among %+v", entries)
	}

	// A forger signs with its own key in the founder's name, at the next
	// place in the founder's chain; a replayer re-sends the founder's own
	// envelope under a new message id, past the stream's de-duplication.
	bus, err := natsbus.Open(ctx, natsbus.Config{URLs: []string{"nats://" + info.Hub}}, info.Alliance, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	forger, err := ledger.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	chain, err := loadChain(d1)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := ledger.Seal(forger, &chain, info.Alliance, ledger.KindManual, ledger.Report{Value: netip.MustParsePrefix("198.51.100.1/32"), Scenario: "manual", Duration: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged.Author = info.ID
	if _, _, err := bus.Publish(ctx, "forged-1", forged.Encode()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bus.Publish(ctx, "replayed-1", manual); err != nil {
		t.Fatal(err)
	}
	garbage, _, err := bus.Publish(ctx, "garbage-1", []byte("not an envelope"))
	if err != nil {
		t.Fatal(err)
	}

	entries = entries[:0]
	rep, err = VerifyLedger(ctx, d1, nil, func(e VerifiedEntry) { entries = append(entries, e) })
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Tampered != 3 || rep.Rejected[alliance.ReasonBadSignature] != 1 || rep.Rejected[alliance.ReasonReplay] != 1 || rep.Rejected[ReasonUndecodable] != 1 {
		t.Fatalf("tampered ledger: %+v", rep)
	}
	var reasons []string
	for _, e := range entries {
		if !e.Accepted {
			if !e.Tampered {
				t.Errorf("entry %d rejected for %s but not marked as tampering", e.Seq, e.Reason)
			}
			reasons = append(reasons, e.Reason)
		}
	}
	if want := []string{alliance.ReasonBadSignature, alliance.ReasonReplay, ReasonUndecodable}; strings.Join(reasons, ",") != strings.Join(want, ",") {
		t.Errorf("rejected entries %v, want %v", reasons, want)
	}

	// Tail from the start sees the same judgement, then follows.
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan VerifiedEntry, 64)
	tailDone := make(chan error, 1)
	go func() { tailDone <- TailLedger(tctx, d1, garbage, nil, func(e VerifiedEntry) { seen <- e }) }()
	select {
	case e := <-seen:
		if e.Seq != garbage || e.Reason != ReasonUndecodable {
			t.Errorf("tail from %d: first entry %+v", garbage, e)
		}
	case <-time.After(deadline):
		t.Fatal("tail delivered nothing")
	}
	if _, err := c1.AddDecision(ctx, DecisionRequest{Value: "192.0.2.9", Reason: "after"}); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(deadline)
	for found := false; !found; {
		select {
		case e := <-seen:
			found = e.Kind == ledger.KindManual && e.Accepted && strings.Contains(e.Summary, "192.0.2.9/32")
		case <-timeout:
			t.Fatal("tail did not follow a new decision")
		}
	}
	cancel()
	if err := <-tailDone; err != nil {
		t.Errorf("TailLedger: %v", err)
	}

	// The founder's ledger lives in its own process: verify says so.
	m1.stop(t)
	if _, err := VerifyLedger(ctx, d1, nil, nil); err == nil || !strings.Contains(err.Error(), "start phalanx up --data") {
		t.Errorf("verify with the hub down: %v", err)
	}
}

// readEntry returns the raw bytes of the ledger entry at seq.
func readEntry(t *testing.T, info Info, seq uint64) []byte {
	t.Helper()
	bus, err := natsbus.Open(t.Context(), natsbus.Config{URLs: []string{"nats://" + info.Hub}}, info.Alliance, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	var data []byte
	err = bus.Consume(t.Context(), seq, func(m natsbus.Message) error {
		data = m.Data
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	return data
}
