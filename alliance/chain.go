package alliance

import "github.com/phalanx-defence/phalanx/ledger"

// ChainOf is where member id's chain stands in the ledger folded so far:
// the Seq and ID of its last envelope that chained (accepted, or refused
// by policy after it chained). A member resynchronises its own chain from
// it after a crash: an envelope it sealed (and saved in its chain) but
// never got into the ledger would otherwise make every later one
// out-of-order.
func (f *Fold) ChainOf(id ledger.MemberID) (ledger.Chain, bool) {
	m, ok := f.members[id]
	if !ok {
		return ledger.Chain{}, false
	}
	return ledger.Chain{Seq: m.LastSeq, Last: m.LastID}, true
}
