// Package loggen writes a deterministic, realistic day of sshd or nginx
// traffic together with its ground truth: which addresses attacked, how,
// when their first hostile line was written, and whether a good detector
// should ban them. Benchmarks use it for a realistic mix of lines (legit
// background traffic dominates, attackers are a few percent); accuracy
// tests use the truth to count missed attackers and false positives.
//
// Generation streams: actors schedule their next activity in a small heap
// and lines are written in time order as they fall due, so memory is
// bounded by the number of open sessions, not by the number of lines.
// The same Config always gives the same bytes: every actor draws from its
// own PCG generator derived from the seed and its name, and nothing reads
// the clock.
package loggen

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Kind is the kind of log to write.
type Kind string

// Kinds of log.
const (
	SSHD  Kind = "sshd"  // an OpenSSH auth.log with BSD syslog headers
	Nginx Kind = "nginx" // an nginx access log in the combined format
)

// Expect is what a good detector should do about an actor.
type Expect string

// Expectations.
const (
	ExpectBan   Expect = "ban"    // the actor must be banned
	ExpectNoBan Expect = "no-ban" // the actor must never be banned
	// ExpectBan80 is for classes whose actors are individually hard to
	// tell from noise (low and slow): banning 80% of the class suffices.
	ExpectBan80 Expect = "ban-80%"
)

// DefaultLines is the default size of a day of traffic.
const DefaultLines = 1_000_000

// DefaultStart is the default start of the day: fixed, so that output does
// not depend on when it is generated. It is a Monday, so office hours mean
// something.
var DefaultStart = time.Date(2025, time.June, 2, 0, 0, 0, 0, time.UTC)

// Config says what to generate. The zero value of every field but Kind
// has a usable default.
type Config struct {
	Kind     Kind
	Lines    int           // about how many lines to write; 0: DefaultLines
	Seed     uint64        // the same seed gives the same bytes
	Start    time.Time     // the first instant of the log; zero: DefaultStart
	Duration time.Duration // how much time the log covers; 0: 24h
	Host     string        // the syslog host name (sshd); "": "bastion"
}

func (c Config) withDefaults() (Config, error) {
	switch c.Kind {
	case SSHD, Nginx:
	default:
		return c, fmt.Errorf("loggen: unknown kind %q: use sshd or nginx", c.Kind)
	}
	if c.Lines == 0 {
		c.Lines = DefaultLines
	}
	if c.Lines < 0 {
		return c, errors.New("loggen: Lines must not be negative")
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Duration == 0 {
		c.Duration = 24 * time.Hour
	}
	if c.Duration < time.Hour {
		return c, errors.New("loggen: Duration must be at least an hour: the slow actors need it")
	}
	if c.Host == "" {
		c.Host = "bastion"
	}
	return c, nil
}

// Truth is the ground truth of a generated log.
type Truth struct {
	Kind  Kind      `json:"kind"`
	Seed  uint64    `json:"seed"`
	Lines int       `json:"lines"` // lines actually written
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// BackgroundLines counts the lines of anonymous legitimate traffic.
	// Every address that is not in Actors is such background traffic and
	// must not be banned.
	BackgroundLines int     `json:"background_lines"`
	Actors          []Actor `json:"actors"`
}

// Actor is one client, or one group of addresses acting together, whose
// behaviour the truth records.
type Actor struct {
	Name  string       `json:"name"`  // unique within the truth, e.g. "ssh-brute-fast-1"
	Class string       `json:"class"` // e.g. "ssh-brute-fast", "http-crawler"
	Addrs []netip.Addr `json:"addrs"`
	// Prefix, when valid, is a network the actor's addresses share (an
	// attacker rotating through one IPv6 /64): banning the prefix bans
	// every address of the actor.
	Prefix netip.Prefix `json:"prefix,omitzero"`
	Expect Expect       `json:"expect"`
	// FirstHostile is when the actor's first hostile line was written;
	// set for actors that should be banned.
	FirstHostile time.Time `json:"first_hostile,omitzero"`
	Lines        int       `json:"lines"`         // lines written for this actor
	HostileLines int       `json:"hostile_lines"` // of which hostile (failures, probes, 4xx probes, payloads)
	Note         string    `json:"note,omitempty"`
}

// Bans reports whether the expectation is a ban of some kind.
func (e Expect) Bans() bool { return e == ExpectBan || e == ExpectBan80 }

// WriteJSON writes the truth as indented JSON.
func (t *Truth) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}

// Generate writes a log of cfg.Kind to w and returns its truth.
func Generate(w io.Writer, cfg Config) (Truth, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Truth{}, err
	}
	// Pass 1: the named actors alone, to learn how many lines they write,
	// so that the background can fill the rest of the requested volume.
	// Actors draw from their own generators, so pass 2 repeats them exactly.
	g := newGen(cfg, io.Discard)
	g.setup(false)
	if err := g.run(); err != nil {
		return Truth{}, err
	}
	actorLines := g.written
	g = newGen(cfg, w)
	g.setup(true)
	g.background.setBudget(cfg.Lines - actorLines)
	if err := g.run(); err != nil {
		return Truth{}, err
	}
	return g.truth, nil
}

// gen is one run of the generator.
type gen struct {
	cfg   Config
	out   *bufio.Writer
	truth Truth
	end   int64 // ms after Start

	heap    []*item
	seq     uint64
	free    []*item
	written int
	err     error

	background budgeted
	used       map[netip.Addr]bool // addresses handed to named actors

	pid int // the last sshd process id handed out

	// Rendered time of the last second written.
	stampSec int64
	stamp    []byte
}

// actor is anything that writes lines. wake is called at its scheduled
// time (ms after Start); it pushes lines at or after now and returns when
// to be woken next, or a negative value when it is done.
type actor interface {
	wake(g *gen, now int64) int64
}

// budgeted is the background actor: it writes as many lines as it is told.
type budgeted interface {
	actor
	setBudget(lines int)
}

// item is a line waiting to be written, or an actor waiting to be woken.
type item struct {
	at      int64 // ms after Start
	seq     uint64
	actor   actor // non-nil: wake it
	who     int   // index into truth.Actors, or -1 for background
	hostile bool
	pid     int
	msg     []byte // sshd: the message; nginx: the line with no time, split at cut
	cut     int
}

func newGen(cfg Config, w io.Writer) *gen {
	return &gen{
		cfg: cfg,
		out: bufio.NewWriterSize(w, 256<<10),
		truth: Truth{
			Kind:  cfg.Kind,
			Seed:  cfg.Seed,
			Start: cfg.Start,
			End:   cfg.Start.Add(cfg.Duration),
		},
		end:      cfg.Duration.Milliseconds(),
		used:     make(map[netip.Addr]bool),
		pid:      1_180_000 + int(cfg.Seed%200_000),
		stampSec: -1,
	}
}

// rng returns the generator for a named actor.
func (g *gen) rng(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(g.cfg.Seed, h.Sum64()))
}

// addActor records an actor in the truth and schedules it.
func (g *gen) addActor(a Actor, act actor, first int64) int {
	for _, ad := range a.Addrs {
		g.used[ad] = true
	}
	g.truth.Actors = append(g.truth.Actors, a)
	g.schedule(act, first)
	return len(g.truth.Actors) - 1
}

func (g *gen) schedule(act actor, at int64) {
	if at < 0 || at >= g.end {
		return
	}
	it := g.alloc()
	it.at, it.actor = at, act
	g.push(it)
}

func (g *gen) alloc() *item {
	if n := len(g.free); n > 0 {
		it := g.free[n-1]
		g.free = g.free[:n-1]
		return it
	}
	return &item{}
}

// line returns an item to fill with a line for actor who at time at.
func (g *gen) line(at int64, who int, hostile bool) *item {
	it := g.alloc()
	it.at, it.who, it.hostile = at, who, hostile
	it.msg = it.msg[:0]
	it.pid, it.cut = 0, 0
	return it
}

// emit queues a filled line; lines past the end of the log are dropped.
func (g *gen) emit(it *item) {
	if it.at >= g.end {
		g.release(it)
		return
	}
	g.push(it)
}

func (g *gen) release(it *item) {
	it.actor = nil
	g.free = append(g.free, it)
}

func (g *gen) run() error {
	for len(g.heap) > 0 {
		it := g.pop()
		if it.actor != nil {
			next := it.actor.wake(g, it.at)
			if next >= 0 && next < it.at {
				next = it.at
			}
			act := it.actor
			g.release(it)
			g.schedule(act, next)
			continue
		}
		g.write(it)
		g.release(it)
		if g.err != nil {
			return g.err
		}
	}
	if err := g.out.Flush(); err != nil {
		return fmt.Errorf("loggen: %w", err)
	}
	g.truth.Lines = g.written
	return nil
}

func (g *gen) write(it *item) {
	sec := it.at / 1000
	if sec != g.stampSec {
		g.stampSec = sec
		t := g.cfg.Start.Add(time.Duration(sec) * time.Second)
		g.stamp = g.stamp[:0]
		switch g.cfg.Kind {
		case SSHD:
			g.stamp = t.AppendFormat(g.stamp, time.Stamp)
		case Nginx:
			g.stamp = t.AppendFormat(g.stamp, "02/Jan/2006:15:04:05 -0700")
		}
	}
	b := g.out.AvailableBuffer()
	switch g.cfg.Kind {
	case SSHD:
		b = append(b, g.stamp...)
		b = append(b, ' ')
		b = append(b, g.cfg.Host...)
		b = append(b, " sshd["...)
		b = appendInt(b, it.pid)
		b = append(b, "]: "...)
		b = append(b, it.msg...)
	case Nginx:
		b = append(b, it.msg[:it.cut]...)
		b = append(b, g.stamp...)
		b = append(b, it.msg[it.cut:]...)
	}
	b = append(b, '\n')
	if _, err := g.out.Write(b); err != nil {
		g.err = fmt.Errorf("loggen: %w", err)
		return
	}
	g.written++
	if it.who < 0 {
		g.truth.BackgroundLines++
		return
	}
	a := &g.truth.Actors[it.who]
	a.Lines++
	if it.hostile {
		a.HostileLines++
		if a.FirstHostile.IsZero() && a.Expect.Bans() {
			a.FirstHostile = g.cfg.Start.Add(time.Duration(sec) * time.Second)
		}
	}
}

// The heap orders items by time, then by the order they were pushed, so
// that output is deterministic.
func less(a, b *item) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (g *gen) push(it *item) {
	g.seq++
	it.seq = g.seq
	h := append(g.heap, it)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	g.heap = h
}

func (g *gen) pop() *item {
	h := g.heap
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = nil
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && less(h[r], h[l]) {
			m = r
		}
		if !less(h[m], h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	g.heap = h
	return top
}

func appendInt(b []byte, n int) []byte {
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// Time helpers, in milliseconds.
const (
	second = int64(1000)
	minute = 60 * second
	hour   = 60 * minute
)

// between returns a uniform value in [lo, hi].
func between(r *rand.Rand, lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + r.Int64N(hi-lo+1)
}

// scaled returns base scaled to the requested volume, but at least min:
// a small log keeps every class of actor recognisable.
func (g *gen) scaled(base, min int) int {
	n := int(float64(base) * float64(g.cfg.Lines) / DefaultLines)
	if n < min {
		return min
	}
	return n
}

// day returns a fraction of the log's duration in ms.
func (g *gen) day(f float64) int64 { return int64(f * float64(g.end)) }

// tag is embedded by actors to know their index in the truth.
type tag struct{ who int }

func (t *tag) setWho(i int) { t.who = i }

// tod returns the time of day, in ms after midnight, of an offset.
func (g *gen) tod(now int64) int64 {
	s := g.cfg.Start
	start := int64(s.Hour())*hour + int64(s.Minute())*minute + int64(s.Second())*second
	return (start + now) % (24 * hour)
}

// setup creates the actors of the configured kind; the anonymous
// background only when background is true.
func (g *gen) setup(background bool) {
	switch g.cfg.Kind {
	case SSHD:
		g.setupSSHD(background)
	case Nginx:
		g.setupNginx(background)
	}
}
