package member

import (
	"context"
	"time"

	"github.com/phalanx-defence/phalanx/natsbus"
)

// resyncChain makes the member's chain (the Seq and ID its next envelope
// follows) what the ledger says, once the fold has read the ledger as far
// as it went at the call. chain.json is saved before each envelope leaves,
// so after a kill -9 between the save and the stream's acknowledgement it
// is one ahead of the ledger: every later envelope would be refused as
// out-of-order, for ever. The envelope that never arrived is dropped; what
// it carried comes again (a report's lines were not acknowledged to the
// file source, so they are read and decided again). It also repairs a
// chain.json that a full disk kept from being saved.
//
// It returns false only when ctx ends first; until then it retries, since
// nothing can be published before the ledger is reachable anyway.
func (m *Member) resyncChain(ctx context.Context, bus *natsbus.Bus) bool {
	var last uint64
	for {
		var err error
		if last, err = bus.LastSeq(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		m.log.Warn("member: cannot read the ledger's length yet; publishing waits", "err", err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		m.mu.Lock()
		applied := m.fold.Applied()
		c, ok := m.fold.ChainOf(m.id.ID)
		m.mu.Unlock()
		if applied >= last {
			if ok && c != m.chain {
				m.log.Warn("member: own chain differs from the ledger's (an envelope sealed before a crash never reached it); continuing from the ledger's",
					"saved_seq", m.chain.Seq, "ledger_seq", c.Seq)
				m.chain = c
				if err := saveChain(m.dir, m.chain); err != nil {
					m.log.Error("member: cannot save the chain position; publishing goes on (the ledger has it)", "err", err)
				}
			}
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
