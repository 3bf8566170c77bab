package alliance

import (
	"net/netip"
	"time"
)

// maxEvictedKept bounds the evicted values a fold remembers for Evicted;
// beyond it the member compares its whole set with the fold instead.
const maxEvictedKept = 1 << 16

// InForce returns the decision on exactly v (not one on a range that
// contains it: Lookup answers that) if it is in force at at. Unlike
// Decisions and Lookup it does not copy: its Reporters and Evidence are
// the fold's, to be read only.
func (f *Fold) InForce(v netip.Prefix, at time.Time) (Decision, bool) {
	d, ok := f.decisions[normalize(v)]
	if !ok || !d.Until().After(at) {
		return Decision{}, false
	}
	return *d, true
}

// Values lists the values of the decisions the fold holds, in no order,
// including expired ones an envelope has not yet swept: a member walks
// them in slices, looking each one up again (InForce), without holding
// its lock for the whole walk.
func (f *Fold) Values() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(f.decisions))
	for v := range f.decisions {
		out = append(out, v)
	}
	return out
}

// Removals counts the decisions removed since the fold started (lifted,
// expired or evicted; a restore starts it again): a member whose count
// did not move knows that no decision of its set lost an alliance
// decision it was merged with.
func (f *Fold) Removals() uint64 { return f.removals }

// Evicted returns the values evicted to stay under the cap on decisions
// since the last call, and forgets them; Apply reports no Change for
// them. all says more were evicted than the fold remembers: compare the
// whole set then.
func (f *Fold) Evicted() (vs []netip.Prefix, all bool) {
	vs, all = f.evicted, f.evictedAll
	f.evicted, f.evictedAll = nil, false
	return vs, all
}

func (f *Fold) noteEvicted(v netip.Prefix) {
	if f.evictedAll {
		return
	}
	if len(f.evicted) >= maxEvictedKept {
		f.evicted, f.evictedAll = nil, true
		return
	}
	f.evicted = append(f.evicted, v)
}
