package demo

import (
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/member"
)

// attack is one attacker's address and what each member made of it.
type attack struct {
	addr     netip.Addr
	kind     string
	writes   []time.Time // when each of its lines was written
	complete bool        // every line written: a decision must follow
	// ref is when the line that tripped member 1's detection was written:
	// the latest of writes before member 1 held the address. Zero until
	// then.
	ref      time.Time
	scenario string
	held     []time.Time // per member: when its set first held the address
	shown    []bool      // per member: its line is printed
}

// tracker follows the attacks and every member's decision set.
type tracker struct {
	out     io.Writer
	al      *alliance
	changed chan struct{} // signalled after each first sighting

	mu       sync.Mutex
	attacks  map[netip.Addr]*attack
	order    []*attack
	innocent map[netip.Addr]bool // legitimate addresses some member banned
}

func newTracker(out io.Writer, al *alliance) *tracker {
	return &tracker{out: out, al: al, changed: make(chan struct{}, 1),
		attacks: map[netip.Addr]*attack{}, innocent: map[netip.Addr]bool{}}
}

func (t *tracker) register(a attacker) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.al.members)
	at := &attack{addr: a.addr, kind: a.kind, held: make([]time.Time, n), shown: make([]bool, n)}
	t.attacks[a.addr] = at
	t.order = append(t.order, at)
}

func (t *tracker) wrote(a netip.Addr, at time.Time, last bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if x := t.attacks[a]; x != nil {
		x.writes = append(x.writes, at)
		x.complete = x.complete || last
	}
}

// watch follows member i's decision set. The time is taken on receipt: a
// subscriber's delay is part of the protection a firewall would see.
func (t *tracker) watch(i int, m *member.Member, ch <-chan decisions.Change) {
	for c := range ch {
		at := time.Now()
		if c.Resync {
			// Changes were dropped: whatever the set holds now, it held
			// at the latest now.
			for _, d := range m.Decisions().List() {
				t.held(i, d.Value.Addr(), d.Scenario, at)
			}
		}
		if c.Op == decisions.Added && c.Decision.Value.IsSingleIP() {
			t.held(i, c.Decision.Value.Addr(), c.Decision.Scenario, at)
		}
	}
}

func (t *tracker) held(i int, a netip.Addr, scenario string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	x := t.attacks[a]
	if x == nil {
		if !t.innocent[a] {
			t.innocent[a] = true
			fmt.Fprintf(t.out, "%-9s banned %s (%s), which is not one of the attackers: a false positive\n", t.al.names[i], a, scenario)
		}
		return
	}
	if !x.held[i].IsZero() {
		return
	}
	x.held[i] = at
	if i == 0 {
		x.scenario = scenario
		x.ref = at
		for _, w := range slices.Backward(x.writes) {
			if !w.After(at) {
				x.ref = w
				break
			}
		}
	}
	if !x.ref.IsZero() {
		for j := range x.held {
			t.show(x, j)
		}
	}
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// show prints member j's line about x once both it and member 1 hold it.
func (t *tracker) show(x *attack, j int) {
	if x.shown[j] || x.held[j].IsZero() {
		return
	}
	x.shown[j] = true
	d := x.held[j].Sub(x.ref)
	if j == 0 {
		fmt.Fprintf(t.out, "%-9s detected %s (%s) %s after its line was written\n", t.al.names[j], x.addr, x.scenario, fmtMS(d))
		return
	}
	fmt.Fprintf(t.out, "%-9s protected against %s (%s) %s after member-1 saw it\n", t.al.names[j], x.addr, x.scenario, fmtMS(d))
}

func fmtMS(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

// allHeld: every complete attack is held by every member.
func (t *tracker) allHeld() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, x := range t.order {
		if !x.complete {
			continue
		}
		for _, h := range x.held {
			if h.IsZero() {
				return false
			}
		}
	}
	return true
}

// drain waits up to limit for the decisions still on their way.
func (t *tracker) drain(limit time.Duration) {
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	for !t.allHeld() {
		select {
		case <-t.changed:
		case <-timeout.C:
			return
		}
	}
}

func (t *tracker) summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Summary{FalsePositives: len(t.innocent)}
	for _, x := range t.order {
		if x.complete {
			s.Attacks++
		}
		if !x.held[0].IsZero() {
			s.Decisions++
		}
	}
	for i, m := range t.al.members {
		ms := MemberSummary{ID: m.ID(), Name: t.al.names[i], Protected: true}
		var ttps []time.Duration
		for _, x := range t.order {
			_, holds := m.Decisions().Lookup(x.addr)
			if holds {
				ms.Decisions++
			}
			if x.complete && !holds {
				ms.Protected = false
			}
			if !x.held[i].IsZero() && !x.ref.IsZero() {
				ttps = append(ttps, x.held[i].Sub(x.ref))
			}
		}
		if len(ttps) > 0 {
			slices.Sort(ttps)
			ms.TTPMS = roundMS(ttps[len(ttps)-1])
			ms.TTPP50MS = roundMS(ttps[(len(ttps)+1)/2-1])
		}
		s.Members = append(s.Members, ms)
	}
	return s
}

// roundMS is d in milliseconds to the microsecond: member 1's own
// detection takes well under a millisecond, which whole milliseconds
// would show as 0.
func roundMS(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// WriteText writes the summary for a person.
func (s Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\n%d attackers played, %d decisions, %d false positives, in %v\n",
		s.Attacks, s.Decisions, s.FalsePositives, (time.Duration(s.DurationMS) * time.Millisecond).Round(100*time.Millisecond))
	for _, m := range s.Members {
		state := "protected"
		if !m.Protected {
			state = "NOT protected against every attacker"
		}
		fmt.Fprintf(w, "  %-9s %-10s %s: %d decisions, time to protect p50 %.1f ms, max %.1f ms\n",
			m.Name, short(string(m.ID)), state, m.Decisions, m.TTPP50MS, m.TTPMS)
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
