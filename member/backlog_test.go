package member

import (
	"testing"

	"github.com/phalanx-defence/phalanx/ledger"
)

// TestReportBacklog: with the outbox full, reports queue in order instead
// of blocking detection, leave in that order as the outbox drains, and
// beyond maxBacklog are refused (the caller enforces locally only).
func TestReportBacklog(t *testing.T) {
	out := make(chan outgoing, 2)
	var b reportBacklog
	report := func(i int) outgoing {
		return outgoing{kind: ledger.KindReport, body: i}
	}
	if b.to(out) != nil {
		t.Fatal("an empty backlog offers a send")
	}
	for i := range 2 {
		if !b.push(out, report(i)) || len(b.q) != 0 {
			t.Fatalf("report %d: not handed straight to an outbox with room", i)
		}
	}
	for i := 2; i < 2+maxBacklog; i++ {
		if !b.push(out, report(i)) {
			t.Fatalf("report %d refused with %d queued", i, len(b.q))
		}
	}
	if b.push(out, report(-1)) {
		t.Fatal("a full backlog took one more report")
	}
	// Drain as the detection loop does; everything leaves in order.
	for want := range 2 + maxBacklog {
		got := (<-out).body.(int)
		if got != want {
			t.Fatalf("report %d left as number %d", got, want)
		}
		if b.to(out) != nil {
			select {
			case b.to(out) <- b.head():
				b.pop()
			default:
				t.Fatal("the outbox has room but the backlog could not send")
			}
		}
	}
	if len(b.q) != 0 || b.to(out) != nil {
		t.Fatalf("%d reports left in the backlog", len(b.q))
	}
	// Once empty, a report goes straight through again.
	if !b.push(out, report(7)) || len(b.q) != 0 {
		t.Fatal("an empty backlog queued a report the outbox had room for")
	}
}
