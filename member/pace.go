package member

import (
	"context"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
)

// pace holds a report or sighting back, in the publisher, until
// publishing it keeps this member within the charter's rate as the fold
// measures it: a sliding minute of stream time, which is publish time.
// Detection keeps to the budget on average (reportBudget), but a backlog
// in the outbox drained at once — the broker was slow, or away — would
// bunch minutes' worth into one, and the fold would refuse them and flag
// the member. Manual decisions are counted but never held: a person is
// waiting for them. It returns false when ctx ends first.
func (m *Member) pace(ctx context.Context, b *reportBudget, kind ledger.Kind) bool {
	switch kind {
	case ledger.KindReport, ledger.KindSighting:
	case ledger.KindManual:
		b.sent = append(b.sent, m.clock.Now())
		return true
	default:
		return true
	}
	for {
		now := m.clock.Now()
		limit := m.reportLimit()
		if b.take(now, limit, 0) {
			return true
		}
		// The oldest entry leaves the minute first.
		wait := 100 * time.Millisecond
		if len(b.sent) > 0 {
			wait = max(b.sent[0].Add(time.Minute).Sub(now), 10*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
