// Package nft enforces ban decisions in the Linux kernel with nftables.
//
// It owns one table (inet family, "phalanx" by default) holding four sets
// — single addresses in hash sets (addr-v4, addr-v6), wider prefixes in
// interval sets (range-v4, range-v6) — and a chain per hook that drops
// packets whose source is in any of them. Single addresses, by far the
// most common ban, stay out of the interval sets: a hash set takes one
// element per address where an interval set takes two, and the kernel
// inserts into it several times faster. It talks netlink directly and never
// runs the nft command. Every element carries its decision's remaining time
// as a kernel timeout, so bans lapse on schedule even if phalanx dies, and
// a crashed phalanx never leaves a permanent ban behind.
package nft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
)

// Config configures the enforcer.
type Config struct {
	Table     string        `yaml:"table,omitempty"`     // default "phalanx"
	Forward   bool          `yaml:"forward,omitempty"`   // also drop in the forward hook
	Priority  int           `yaml:"priority,omitempty"`  // default -200 (before the usual filter chains at 0)
	Reconcile time.Duration `yaml:"reconcile,omitempty"` // periodic full reconcile, default 1m
	NetNS     string        `yaml:"-"`                   // tests: a named network namespace

	// Observe, if set, is called after every write that a change of the
	// decision set caused, with the changes it applied and the time from
	// the earliest of them (decisions.Change.At) to the netlink flush
	// completing: the enforcement apply latency, queueing included. Run
	// calls it from its own goroutine; it must not block.
	Observe func(Applied) `yaml:"-"`
}

// Applied describes one write to the kernel caused by decision changes.
type Applied struct {
	Changes int           // decision-set changes it covered
	Latency time.Duration // earliest change → flush complete
	Full    bool          // a full reconcile (a resync or a failed update), not an incremental write
}

const (
	setAddrV4  = "addr-v4"
	setAddrV6  = "addr-v6"
	setRangeV4 = "range-v4"
	setRangeV6 = "range-v6"

	// msgElems bounds the elements in one netlink message: the element
	// list is a single attribute whose length field is 16 bits, and a v6
	// element with flags and timeout takes about 48 bytes.
	msgElems = 1024
	// flushElems bounds the elements in one transaction so the batch fits
	// the send buffer (about 50 bytes an element). Fewer, larger
	// transactions are much faster: the kernel walks an interval set at
	// each commit.
	flushElems = 256 * msgElems
	sendBuffer = 32 << 20
	// maxTimeout caps an element's timeout below 2^31 ms, which every
	// kernel accepts; the reconcile loop refreshes longer bans in time.
	maxTimeout = 20 * 24 * time.Hour
	// expiryMargin: an element this close to its timeout is left for the
	// kernel to remove, because deleting it may race the kernel's own
	// expiry and fail the whole transaction with ENOENT.
	expiryMargin = time.Second
)

// Enforcer keeps the kernel sets equal to the ban decisions.
type Enforcer struct {
	cfg   Config
	never []netip.Prefix
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex // serialises writes to the kernel and applied
	conn    *nftables.Conn
	table   *nftables.Table
	sets    [4]*nftables.Set // by kind
	ready   bool             // table installed by this enforcer
	applied []entry          // what the last write left in the kernel, sorted
}

// Kinds index Enforcer.sets; an even kind is IPv4.
const (
	kAddrV4 = iota
	kAddrV6
	kRangeV4
	kRangeV6
)

// kind indexes Enforcer.sets: addr-v4, addr-v6, range-v4, range-v6.
func kind(v4, single bool) int {
	k := 0
	if !v4 {
		k = 1
	}
	if !single {
		k += 2
	}
	return k
}

func spanKind(s span) int { return kind(s.start.Is4(), s.single) }

// New returns an enforcer for cfg. never lists the prefixes that must never
// be dropped (the allowlist and the alliance's own territory). It opens the
// netlink connection but does not touch the ruleset until Run or Apply.
func New(cfg Config, never []netip.Prefix, log *slog.Logger) (*Enforcer, error) {
	if cfg.Table == "" {
		cfg.Table = "phalanx"
	}
	if cfg.Priority == 0 {
		cfg.Priority = -200
	}
	if cfg.Reconcile <= 0 {
		cfg.Reconcile = time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ns := make([]netip.Prefix, 0, len(never))
	for _, p := range never {
		if p.IsValid() {
			ns = append(ns, normalize(p))
		}
	}
	conn, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	table := &nftables.Table{Name: cfg.Table, Family: nftables.TableFamilyINet}
	return &Enforcer{
		cfg:   cfg,
		never: ns,
		log:   log.With("enforcer", "nft", "table", cfg.Table),
		now:   time.Now,
		conn:  conn,
		table: table,
		sets: [4]*nftables.Set{
			kAddrV4:  {Table: table, Name: setAddrV4, KeyType: nftables.TypeIPAddr, HasTimeout: true},
			kAddrV6:  {Table: table, Name: setAddrV6, KeyType: nftables.TypeIP6Addr, HasTimeout: true},
			kRangeV4: {Table: table, Name: setRangeV4, KeyType: nftables.TypeIPAddr, Interval: true, HasTimeout: true},
			kRangeV6: {Table: table, Name: setRangeV6, KeyType: nftables.TypeIP6Addr, Interval: true, HasTimeout: true},
		},
	}, nil
}

// dial opens a lasting netlink connection, inside cfg.NetNS if set. The
// namespace handle is only needed while dialling: the socket stays in the
// namespace it was created in.
func dial(cfg Config) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(bigSendBuffer)}
	if cfg.NetNS != "" {
		h, err := netns.GetFromName(cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("nft: open network namespace %q: %w (create it with `ip netns add`)", cfg.NetNS, err)
		}
		defer h.Close()
		opts = append(opts, nftables.WithNetNSFd(int(h)))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, wrap("open netlink connection", err)
	}
	return conn, nil
}

// bigSendBuffer raises the socket's send buffer so a large batch goes in
// one transaction. SO_SNDBUFFORCE passes the net.core.wmem_max cap, which
// our CAP_NET_ADMIN allows; failing that, batches stay small.
func bigSendBuffer(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	_ = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer)
	})
	if serr != nil {
		_ = c.SetWriteBuffer(sendBuffer)
	}
	return nil
}

// wrap adds what to do about the errors an operator can fix.
func wrap(what string, err error) error {
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("nft: %s: %w (needs CAP_NET_ADMIN: run as root or give the binary the capability)", what, err)
	}
	if errors.Is(err, syscall.EPROTONOSUPPORT) || errors.Is(err, syscall.ENOENT) && what == "install table" {
		return fmt.Errorf("nft: %s: %w (is the nf_tables kernel module available? try `modprobe nf_tables`)", what, err)
	}
	return fmt.Errorf("nft: %s: %w", what, err)
}

// Close releases the netlink connection.
func (e *Enforcer) Close() error {
	return e.conn.CloseLasting()
}

// install creates the table, sets and chains if they are missing and
// replaces the rules atomically. Existing set elements survive, so a
// restart leaves no window in which banned sources get through.
func (e *Enforcer) install() error {
	if e.ready {
		return nil
	}
	if err := e.tryInstall(); err != nil {
		// A set left with other flags (an older layout) cannot be
		// redefined in place: start the table afresh.
		e.log.Warn("nft: recreating table", "err", err)
		e.conn.DelTable(e.table)
		if err := e.conn.Flush(); err != nil && !errors.Is(err, syscall.ENOENT) {
			return wrap("delete stale table", err)
		}
		if err := e.tryInstall(); err != nil {
			return wrap("install table", err)
		}
	}
	e.ready = true
	return nil
}

func (e *Enforcer) tryInstall() error {
	c := e.conn
	// Sets of an older layout (ban-v4 and ban-v6, interval sets for
	// everything) are deleted in the same transaction once no rule uses
	// them; the reconcile that follows refills the new sets.
	var stale []*nftables.Set
	if old, err := c.GetSets(e.table); err == nil {
		for _, s := range old {
			if !slices.ContainsFunc(e.sets[:], func(o *nftables.Set) bool { return o.Name == s.Name }) {
				stale = append(stale, s)
			}
		}
	}
	c.AddTable(e.table)
	for _, s := range e.sets {
		s.ID = 0 // a fresh ID per transaction for the rules' lookups
		if err := c.AddSet(s, nil); err != nil {
			return err
		}
	}
	prio := nftables.ChainPriority(e.cfg.Priority)
	hooks := map[string]*nftables.ChainHook{"input": nftables.ChainHookInput}
	if e.cfg.Forward {
		hooks["forward"] = nftables.ChainHookForward
	} else if ch, _ := c.ListChain(e.table, "forward"); ch != nil {
		c.DelChain(ch) // forward enforcement was turned off
	}
	accept := nftables.ChainPolicyAccept
	for _, name := range []string{"input", "forward"} {
		hook, ok := hooks[name]
		if !ok {
			continue
		}
		ch := c.AddChain(&nftables.Chain{
			Name: name, Table: e.table, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: &prio, Policy: &accept,
		})
		c.FlushChain(ch)
		for k, s := range e.sets {
			if k%2 == 0 {
				c.AddRule(&nftables.Rule{Table: e.table, Chain: ch, Exprs: dropFrom(s, unix.NFPROTO_IPV4, 12, 4)})
			} else {
				c.AddRule(&nftables.Rule{Table: e.table, Chain: ch, Exprs: dropFrom(s, unix.NFPROTO_IPV6, 8, 16)})
			}
		}
	}
	for _, s := range stale {
		c.DelSet(s)
	}
	if err := c.Flush(); err != nil {
		return err
	}
	if len(stale) > 0 {
		e.log.Info("nft: migrated table to the four-set layout", "removed_sets", len(stale))
	}
	return nil
}

// dropFrom is `meta nfproto P <saddr> @set counter drop`.
func dropFrom(s *nftables.Set, proto byte, off, n uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// Apply makes the kernel sets hold exactly the bans among ds: it reads
// what the kernel has, adds what is missing, refreshes timeouts that fell
// short, and removes the rest, whatever put it there.
func (e *Enforcer) Apply(ds []phalanx.Decision) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reconcile(ds)
}

func (e *Enforcer) reconcile(ds []phalanx.Decision) error {
	if err := e.install(); err != nil {
		return err
	}
	now := e.now()
	want := plan(ds, e.never, now)
	have, err := e.read(now)
	if err != nil {
		return err
	}
	err = e.write(have, want, now, false)
	if err != nil {
		return err
	}
	e.applied = want
	return nil
}

// read returns the spans in the kernel sets with the time each lapses,
// sorted by compareSpan.
func (e *Enforcer) read(now time.Time) ([]entry, error) {
	var out []entry
	for k, s := range e.sets {
		elems, err := e.conn.GetSetElements(s)
		if err != nil {
			return nil, wrap("read set "+s.Name, err)
		}
		v4 := k%2 == 0
		if !s.Interval {
			for _, el := range elems {
				a := addrOf(el.Key, v4)
				if !a.IsValid() {
					continue
				}
				out = append(out, entry{span{start: a, end: a.Next(), single: true}, now.Add(el.Expires)})
			}
			continue
		}
		// The kernel dumps an interval as a start element and an end
		// element (flagged) at the next address past it; adjacent
		// intervals share a key, so order ends before starts.
		slices.SortFunc(elems, func(a, b nftables.SetElement) int {
			if c := compareKeys(a.Key, b.Key); c != 0 {
				return c
			}
			switch {
			case a.IntervalEnd == b.IntervalEnd:
				return 0
			case a.IntervalEnd:
				return -1
			}
			return 1
		})
		var open *nftables.SetElement
		for i := range elems {
			el := &elems[i]
			if el.IntervalEnd {
				if open != nil {
					out = append(out, entry{span{start: addrOf(open.Key, v4), end: addrOf(el.Key, v4)}, now.Add(open.Expires)})
					open = nil
				}
				continue
			}
			if open != nil { // a start without an end runs to the top
				out = append(out, entry{span{start: addrOf(open.Key, v4)}, now.Add(open.Expires)})
			}
			open = el
		}
		if open != nil {
			out = append(out, entry{span{start: addrOf(open.Key, v4)}, now.Add(open.Expires)})
		}
	}
	slices.SortFunc(out, func(a, b entry) int { return compareSpan(a.span, b.span) })
	// A hand-made duplicate (the same span twice) would break the merge.
	out = slices.CompactFunc(out, func(a, b entry) bool { return compareSpan(a.span, b.span) == 0 })
	return out, nil
}

func compareKeys(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return len(a) - len(b)
}

func addrOf(k []byte, v4 bool) netip.Addr {
	if v4 && len(k) == 4 {
		return netip.AddrFrom4([4]byte(k))
	}
	if len(k) == 16 {
		return netip.AddrFrom16([16]byte(k))
	}
	return netip.Addr{}
}

// write turns have into want, both sorted by compareSpan. exact says have
// is what this enforcer wrote (so any change of expiry is a refresh);
// otherwise have was read back from the kernel, whose remaining times have
// drifted by the time since they were written, and only a clear shortfall
// is refreshed.
func (e *Enforcer) write(have, want []entry, now time.Time, exact bool) error {
	var del []span
	add := make([]entry, 0, max(len(want)-len(have), 0))
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		c := 0
		switch {
		case i == len(have):
			c = 1
		case j == len(want):
			c = -1
		default:
			c = compareSpan(have[i].span, want[j].span)
		}
		switch {
		case c > 0: // missing from the kernel
			add = append(add, want[j])
			j++
		case c < 0: // not wanted
			if have[i].until.Sub(now) > expiryMargin {
				del = append(del, have[i].span)
			}
			i++
		default:
			h, w := have[i], want[j]
			i++
			j++
			short := w.until.Sub(h.until)
			if !exact {
				short -= max(2*time.Second, min(w.until.Sub(now), maxTimeout)/10)
			}
			if w.until.Equal(h.until) || short <= 0 {
				continue
			}
			// Extended: the kernel keeps an element's first timeout, so
			// delete and re-add it in the same transaction.
			add = append(add, w)
			if h.until.Sub(now) > expiryMargin {
				del = append(del, h.span)
			}
		}
	}
	if len(del) == 0 && len(add) == 0 {
		return nil
	}
	b := batcher{e: e}
	for _, s := range del {
		if err := b.put(s, 0, true); err != nil {
			return err
		}
	}
	for _, a := range add {
		ttl := min(a.until.Sub(now), maxTimeout)
		if ttl < time.Millisecond {
			continue
		}
		// Round up so an element never lapses before its decision.
		ttl = ttl.Truncate(time.Millisecond) + time.Millisecond
		if err := b.put(a.span, ttl, false); err != nil {
			return err
		}
	}
	if err := b.flush(); err != nil {
		return err
	}
	e.log.Debug("nft: sets updated", "added", len(add), "removed", len(del))
	return nil
}

// batcher queues element changes per set and message, and flushes a
// transaction whenever it holds flushElems elements.
type batcher struct {
	e       *Enforcer
	pending [4][2][]nftables.SetElement // by kind, then deletion
	keys    []byte                      // backing store for element keys
	n       int
}

func (b *batcher) key(a netip.Addr) []byte {
	if len(b.keys) < 16 {
		b.keys = make([]byte, 16*msgElems)
	}
	var k []byte
	if a.Is4() {
		v := a.As4()
		k = append(b.keys[:0:4], v[:]...)
		b.keys = b.keys[4:]
	} else {
		v := a.As16()
		k = append(b.keys[:0:16], v[:]...)
		b.keys = b.keys[16:]
	}
	return k
}

func (b *batcher) put(s span, ttl time.Duration, del bool) error {
	k, d := spanKind(s), 0
	if del {
		d = 1
	}
	els := b.pending[k][d]
	if els == nil {
		els = make([]nftables.SetElement, 0, msgElems+1)
	}
	els = append(els, nftables.SetElement{Key: b.key(s.start), Timeout: ttl})
	b.n++
	if !s.single && s.end.IsValid() {
		// The kernel refuses a timeout on an end element: the start's
		// timeout governs the interval.
		els = append(els, nftables.SetElement{Key: b.key(s.end), IntervalEnd: true})
		b.n++
	}
	b.pending[k][d] = els
	if len(els) >= msgElems {
		if err := b.queue(k, d); err != nil {
			return err
		}
	}
	if b.n >= flushElems {
		return b.flush()
	}
	return nil
}

// queue turns the pending elements of one set and operation into one
// netlink message. The library encodes them at once, so the slice is
// reused.
func (b *batcher) queue(k, d int) error {
	els := b.pending[k][d]
	if len(els) == 0 {
		return nil
	}
	s := b.e.sets[k]
	var err error
	if d == 1 {
		err = b.e.conn.SetDeleteElements(s, els)
	} else {
		err = b.e.conn.SetAddElements(s, els)
	}
	clear(els)
	b.pending[k][d] = els[:0]
	if err != nil {
		return wrap("encode elements", err)
	}
	return nil
}

func (b *batcher) flush() error {
	// Deletions first: a refreshed element is deleted, then re-added.
	for d := 1; d >= 0; d-- {
		for k := range b.pending {
			if err := b.queue(k, d); err != nil {
				return err
			}
		}
	}
	b.n = 0
	if err := b.e.conn.Flush(); err != nil {
		return wrap("update sets", err)
	}
	return nil
}

// Run installs the table and keeps the kernel sets equal to the bans in
// ds until ctx ends: a full reconcile at start and every cfg.Reconcile,
// and in between the set's changes, applied in batches as they come. It
// leaves the table in place when it returns, so bans stay enforced (and
// lapse by their timeouts) across restarts; Down removes it.
func (e *Enforcer) Run(ctx context.Context, ds *decisions.Set) error {
	ch, cancel := ds.Subscribe(4096)
	defer cancel()
	// Subscribed before listing, so no change falls in between.
	byValue := make(map[netip.Prefix]phalanx.Decision)
	relist := func() []phalanx.Decision {
		clear(byValue)
		list := ds.List()
		for _, d := range list {
			byValue[d.Value] = d
		}
		return list
	}
	if err := e.Apply(relist()); err != nil {
		return err
	}
	tick := time.NewTicker(e.cfg.Reconcile)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := e.Apply(relist()); err != nil {
				e.log.Error("nft: reconcile failed", "err", err)
			}
		case c, ok := <-ch:
			if !ok {
				return nil
			}
			resync := e.take(c, byValue)
			first, n := c.At, 1
			// Coalesce whatever else is queued into the same transaction.
		drain:
			for {
				select {
				case c, ok := <-ch:
					if !ok {
						break drain
					}
					resync = e.take(c, byValue) || resync
					n++
					if !c.At.IsZero() && (first.IsZero() || c.At.Before(first)) {
						first = c.At
					}
				default:
					break drain
				}
			}
			if resync {
				if err := e.Apply(relist()); err != nil {
					e.log.Error("nft: resync failed", "err", err)
					continue
				}
				e.observe(first, n, true)
				continue
			}
			if err := e.update(slices.Collect(maps.Values(byValue))); err != nil {
				// The kernel may have expired an element we meant to
				// delete; rebuild from what it actually holds.
				e.log.Warn("nft: incremental update failed, reconciling", "err", err)
				if err := e.Apply(relist()); err != nil {
					e.log.Error("nft: reconcile failed", "err", err)
					continue
				}
				e.observe(first, n, true)
				continue
			}
			e.observe(first, n, false)
		}
	}
}

// observe reports a successful write for n changes, the earliest made at
// first, to cfg.Observe. A change without a time (a set that predates
// Change.At) is measured from now, i.e. not at all.
func (e *Enforcer) observe(first time.Time, n int, full bool) {
	if e.cfg.Observe == nil {
		return
	}
	var lat time.Duration
	if !first.IsZero() {
		lat = max(0, time.Since(first))
	}
	e.cfg.Observe(Applied{Changes: n, Latency: lat, Full: full})
}

func (e *Enforcer) take(c decisions.Change, byValue map[netip.Prefix]phalanx.Decision) (resync bool) {
	switch c.Op {
	case decisions.Added:
		byValue[c.Decision.Value] = c.Decision
	case decisions.Deleted, decisions.Expired:
		delete(byValue, c.Decision.Value)
	}
	return c.Resync
}

// update writes the difference between ds and what this enforcer last
// wrote, without reading the kernel back.
func (e *Enforcer) update(ds []phalanx.Decision) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	want := plan(ds, e.never, now)
	if err := e.write(e.applied, want, now, true); err != nil {
		return err
	}
	e.applied = want
	return nil
}

// Down removes phalanx's table, and with it its chains and sets, leaving
// every other table alone. It is not an error if the table is absent.
func Down(cfg Config) error {
	if cfg.Table == "" {
		cfg.Table = "phalanx"
	}
	conn, err := dial(cfg)
	if err != nil {
		return err
	}
	defer conn.CloseLasting()
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return wrap("list tables", err)
	}
	for _, t := range tables {
		if t.Name == cfg.Table {
			conn.DelTable(t)
			if err := conn.Flush(); err != nil {
				return wrap("delete table "+cfg.Table, err)
			}
		}
	}
	return nil
}
