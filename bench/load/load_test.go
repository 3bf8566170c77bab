package main

import (
	"context"
	"testing"
	"time"
)

// TestShortLoad is the CI-sized version of the five-minute run: a real hub,
// two real members, signed reports at a modest rate for three seconds;
// every member must end up enforcing every published report.
func TestShortLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the load run starts a NATS server and two members")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Members: 2, Reporters: 4, Rate: 200, Duration: 3 * time.Second,
		InProc: true, Drain: time.Minute, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published == 0 || res.PublishErrors != 0 {
		t.Fatalf("published %d, %d errors", res.Published, res.PublishErrors)
	}
	if len(res.MemberResults) != 2 {
		t.Fatalf("%d member results, want 2", len(res.MemberResults))
	}
	for _, m := range res.MemberResults {
		if m.Err != "" || !m.CaughtUp {
			t.Errorf("member %s did not catch up: applied %d of %d: %s", m.Member, m.Applied, res.LastSeq, m.Err)
		}
		if m.Present != res.Published || m.Lost != 0 {
			t.Errorf("member %s enforces %d of %d published reports", m.Member, m.Present, res.Published)
		}
		if m.TTPSamples == 0 {
			t.Errorf("member %s: no time-to-protect measured", m.Member)
		}
		if len(m.Rejections) != 0 {
			t.Errorf("member %s rejected envelopes: %v", m.Member, m.Rejections)
		}
	}
}

func TestTTPHistogram(t *testing.T) {
	var h ttpHistogram
	for i := range 100 {
		h.add(time.Duration(i+1) * time.Millisecond)
	}
	if p50 := h.quantileMS(0.5); p50 < 49 || p50 > 52 {
		t.Errorf("p50 %.1f ms, want about 50", p50)
	}
	if p99 := h.quantileMS(0.99); p99 < 98 || p99 > 101 {
		t.Errorf("p99 %.1f ms, want about 99", p99)
	}
	h.add(time.Hour) // beyond the last bucket: counted there
	if q := h.quantileMS(1); q < 120_000 {
		t.Errorf("max quantile %.0f ms, want the overflow bucket", q)
	}
}
