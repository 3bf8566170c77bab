package httpguard

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// bucket is one throttled address's allowance: ThrottleBurst tokens,
// refilled evenly over RetryAfter.
type bucket struct {
	addr   netip.Addr
	tokens float64
	last   time.Time
}

// bucketLRU bounds the per-address throttle state: an attacker picks the
// addresses (a throttled /64 holds 2^64 of them), so the least recently
// seen bucket is dropped when the table is full. A dropped address starts
// again with a full allowance, which costs at most one burst.
type bucketLRU struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *bucket, most recent at the front
	index map[netip.Addr]*list.Element
}

func newBucketLRU(max int) *bucketLRU {
	return &bucketLRU{max: max, order: list.New(), index: make(map[netip.Addr]*list.Element)}
}

// take spends one token of addr's bucket. When none is left it reports how
// long until the next one.
func (g *Guard) take(addr netip.Addr) (ok bool, wait time.Duration) {
	now := g.clock.Now()
	per := g.cfg.RetryAfter / ThrottleBurst // refill interval of one token
	l := g.buckets
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, found := l.index[addr]; found {
		l.order.MoveToFront(e)
		b = e.Value.(*bucket)
		if el := now.Sub(b.last); el > 0 {
			b.tokens = min(ThrottleBurst, b.tokens+float64(el)/float64(per))
		}
		b.last = now
	} else {
		if l.order.Len() >= l.max {
			old := l.order.Back()
			l.order.Remove(old)
			delete(l.index, old.Value.(*bucket).addr)
		}
		b = &bucket{addr: addr, tokens: ThrottleBurst, last: now}
		l.index[addr] = l.order.PushFront(b)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(per))
}

// len is the number of buckets held, for tests.
func (l *bucketLRU) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}
