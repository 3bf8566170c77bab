package alliance

import (
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
)

// TestClockSkewBetweenMembers: members whose clocks are off by up to the
// charter's max_clock_skew (one slow, one fast) decide together exactly
// as members with true clocks would: windows, LastSeen and expiry are
// stream time, never an author's clock. One second beyond the bound is
// refused, and the chain goes on.
func TestClockSkewBetweenMembers(t *testing.T) {
	skew := testPolicy().MaxClockSkew
	const v = "192.0.2.50"
	for _, tc := range []struct {
		name   string
		b, c   time.Duration // each author's clock error
		decide bool
		reason string // c's outcome
	}{
		{"true clocks", 0, 0, true, ""},
		{"one slow, one fast, at the bound", -skew, skew, true, ""},
		{"fast beyond the bound", 0, skew + time.Second, false, ReasonClockSkew},
		{"slow beyond the bound", 0, -skew - time.Second, false, ReasonClockSkew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			stream := t0.Add(10 * time.Minute)
			at := func(n string, off time.Duration) ledger.Envelope {
				h.at = stream.Add(off)
				e := h.env(n, ledger.KindReport, rep(v, "ssh-slow"))
				h.at = stream
				return e
			}
			if out := h.apply(at("b", tc.b)); !out.Accepted {
				t.Fatalf("b: %+v", out)
			}
			out := h.apply(at("c", tc.c))
			if out.Reason != tc.reason {
				t.Fatalf("c: %+v, want reason %q", out, tc.reason)
			}
			ds := h.f.Decisions(stream)
			if !tc.decide {
				if len(ds) != 0 {
					t.Fatalf("decided on one member's report: %+v", ds)
				}
				// The refused envelope still moved c's chain.
				if out := h.send("c", ledger.KindReport, rep(v, "ssh-slow")); !out.Accepted || len(h.f.Decisions(stream)) != 1 {
					t.Fatalf("c's next envelope with a true clock: %+v", out)
				}
				return
			}
			if len(ds) != 1 {
				t.Fatalf("decisions: %+v", ds)
			}
			d := ds[0]
			if !d.LastSeen.Equal(stream) || !d.Until().Equal(stream.Add(4*time.Hour)) {
				t.Errorf("decision timed by the authors' clocks: last seen %v, until %v; want %v, %v", d.LastSeen, d.Until(), stream, stream.Add(4*time.Hour))
			}
		})
	}
}

// TestReplayChangesNothing: envelopes published again later — a lift, a
// ceasefire, an expulsion, a report — by a broker or anyone who kept a
// copy, are refused as replays and leave the state as it was.
func TestReplayChangesNothing(t *testing.T) {
	h := newHarness(t)
	const v = "192.0.2.60"
	h.send("b", ledger.KindReport, rep(v, "ssh-slow"))
	h.send("c", ledger.KindReport, rep(v, "ssh-slow"))
	lift := h.env("a", ledger.KindLift, ledger.Lift{Value: mustValue(v), Reason: "false positive"})
	if out := h.apply(lift); !out.Accepted || len(h.f.Decisions(h.at)) != 0 {
		t.Fatalf("lift: %+v", out)
	}
	cf := h.env("a", ledger.KindCeasefire, ledger.Ceasefire{ID: "cf1", Until: t0.Add(10 * time.Minute), Reason: "test"})
	h.apply(cf)

	// The attack goes on: decided again, after the ceasefire.
	h.at = t0.Add(20 * time.Minute)
	h.send("b", ledger.KindReport, rep(v, "ssh-slow"))
	h.send("c", ledger.KindReport, rep(v, "ssh-slow"))
	before := values(h.f.Decisions(h.at))
	if len(before) != 1 {
		t.Fatalf("decided again: %v", before)
	}
	report := h.env("b", ledger.KindReport, rep("192.0.2.61", "ssh-slow"))
	h.apply(report)

	for name, e := range map[string]ledger.Envelope{"lift": lift, "ceasefire": cf, "report": report} {
		if out := h.apply(e); out.Reason != ReasonReplay {
			t.Errorf("replayed %s: %+v, want %s", name, out, ReasonReplay)
		}
	}
	if got := values(h.f.Decisions(h.at)); len(got) != 1 || got[0] != before[0] {
		t.Errorf("after the replays: %v, want %v", got, before)
	}
	if cs := h.f.Ceasefires(h.at); len(cs) != 0 {
		t.Errorf("a replayed ceasefire is in force: %+v", cs)
	}
	// A report replayed only counts once: one member is still one member.
	if _, ok := h.f.Lookup(mustValue("192.0.2.61").Addr(), h.at); ok {
		t.Error("a report replayed by its own author was counted twice")
	}
}
