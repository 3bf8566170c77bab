package alliance

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
)

// A batch folds as its reports would one by one: the same decisions, the
// same pending corroboration, and each report refused on its own.
func TestReportsBatchFoldsLikeSingleReports(t *testing.T) {
	batch := []ledger.Report{
		rep("192.0.2.7", "ssh-exploit"), // decides alone (the scenario needs 1)
		rep("192.0.2.8", "ssh-bf"),      // pending: needs a second member
		rep("10.1.2.3", "ssh-exploit"),  // allied territory: refused
		rep("203.0.113.9", "ssh-bf"),    // a pact party: refused, breach recorded
		rep("192.0.2.9", "ssh-exploit"),
	}
	one := newHarness(t)
	for _, r := range batch {
		one.send("b", ledger.KindReport, r)
	}
	one.send("c", ledger.KindReport, rep("192.0.2.8", "ssh-bf"))

	many := newHarness(t)
	out := many.send("b", ledger.KindReports, ledger.Reports{Reports: batch})
	if !out.Accepted || out.Refused != 2 {
		t.Fatalf("batch: accepted %v, refused %d (reason %q), want accepted with 2 refused", out.Accepted, out.Refused, out.Reason)
	}
	if got := len(out.Changes); got != 2 {
		t.Errorf("batch made %d changes, want 2 (the two ssh-exploit values)", got)
	}
	many.send("c", ledger.KindReport, rep("192.0.2.8", "ssh-bf"))

	if a, b := values(one.f.Decisions(one.at)), values(many.f.Decisions(many.at)); !slices.Equal(a, b) {
		t.Errorf("decisions one by one %v, in a batch %v", a, b)
	}
	if a, b := len(one.f.Breaches()), len(many.f.Breaches()); a != 1 || b != 1 {
		t.Errorf("breaches one by one %d, in a batch %d, want 1 each", a, b)
	}
	for _, r := range []string{ReasonTerritory, ReasonPact} {
		if a, b := one.f.Rejections()[r], many.f.Rejections()[r]; a != 1 || b != 1 {
			t.Errorf("%s rejections one by one %d, in a batch %d, want 1 each", r, a, b)
		}
	}
}

// Each report of a batch counts against the author's rate limit: a batch
// cannot carry more than the charter allows in a minute.
func TestReportsBatchRateLimit(t *testing.T) {
	h := newHarness(t)
	limit := testPolicy().MaxReportsPerMinute
	var batch []ledger.Report
	for i := range limit + 15 {
		batch = append(batch, rep("192.0.2."+strconv.Itoa(i+1), "ssh-exploit"))
	}
	out := h.send("b", ledger.KindReports, ledger.Reports{Reports: batch})
	if !out.Accepted || out.Refused != 15 || len(out.Changes) != limit {
		t.Fatalf("batch of %d with a limit of %d: accepted %v, refused %d, changes %d", len(batch), limit, out.Accepted, out.Refused, len(out.Changes))
	}
	if got := h.f.Rejections()[ReasonRateLimit]; got != 15 {
		t.Errorf("rate-limit rejections %d, want 15", got)
	}
	flagged := false
	for _, m := range h.f.Members() {
		flagged = flagged || (m.ID == h.m["b"].id && m.Flagged == ReasonRateLimit)
	}
	if !flagged {
		t.Error("the author of an over-limit batch is not flagged")
	}
	// The chain moved: the author's next envelope, a minute later, folds.
	h.at = h.at.Add(2 * time.Minute)
	if out := h.send("b", ledger.KindReport, rep("192.0.2.200", "ssh-exploit")); !out.Accepted {
		t.Errorf("next envelope after the batch: %+v", out)
	}
}

// A batch that breaks the ledger's bounds is refused whole: the
// envelope is not well formed, which verification checks before the
// signature (so it counts as bad-signature), and the body check after.
func TestReportsBatchBadBody(t *testing.T) {
	h := newHarness(t)
	malformed := func(o Outcome) bool {
		return !o.Accepted && (o.Reason == ReasonBadSignature || o.Reason == ReasonBadBody)
	}
	if out := h.send("b", ledger.KindReports, ledger.Reports{}); !malformed(out) {
		t.Errorf("empty batch: %+v", out)
	}
	big := make([]ledger.Report, ledger.MaxReports+1)
	for i := range big {
		big[i] = rep("192.0.2.1", "ssh-exploit")
	}
	if out := h.send("b", ledger.KindReports, ledger.Reports{Reports: big}); !malformed(out) {
		t.Errorf("batch of %d: %+v", len(big), out)
	}
}
