package member

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/alliance"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/natsbus"
)

// Helpers for the fault and lying-member tests: an alliance of several
// members in one process, each with its own data directory, NATS
// connection, consumer and API, and a compromised member that publishes
// whatever it likes with its real identity.

// territoryOf is member i's declared territory in these tests: a /28 of
// TEST-NET-1 each, so that reports against it can be checked.
func territoryOf(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(16 * i)}), 28)
}

// testAlliance is n members in this process, the founder (hub) first.
type testAlliance struct {
	root string
	dirs []string
	ms   []*running
}

// newTestAlliance founds an alliance of n running members. edit, when not
// nil, changes the founding charter before anyone joins (pacts, policy).
func newTestAlliance(t *testing.T, n int, edit func(*charter.Charter)) *testAlliance {
	t.Helper()
	now := time.Now()
	a := &testAlliance{root: t.TempDir()}
	for i := range n {
		a.dirs = append(a.dirs, filepath.Join(a.root, fmt.Sprintf("m%d", i+1)))
	}
	if _, err := Init(a.dirs[0], "faults", "127.0.0.1:0", []netip.Prefix{territoryOf(0)}, now); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		refound(t, a.dirs[0], edit)
	}
	a.ms = append(a.ms, start(t, a.dirs[0]))
	for i := 1; i < n; i++ {
		a.join(t, a.dirs[i], fmt.Sprintf("m%d", i+1), territoryOf(i))
		a.ms = append(a.ms, start(t, a.dirs[i]))
	}
	return a
}

// join admits a new member in dir without running it.
func (a *testAlliance) join(t *testing.T, dir, name string, territory netip.Prefix) {
	t.Helper()
	tok, err := Invite(a.dirs[0], ledger.RoleMember, "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(tok, dir, name, []netip.Prefix{territory}, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// refound re-signs the founder's genesis charter after edit changes it:
// only possible before the founder first runs (nothing is in the ledger).
func refound(t *testing.T, dir string, edit func(*charter.Charter)) {
	t.Helper()
	id, err := ledger.LoadIdentity(filepath.Join(dir, fileIdentity))
	if err != nil {
		t.Fatal(err)
	}
	g, err := loadGenesis(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ledger.DecodeBody[charter.Charter](g)
	if err != nil {
		t.Fatal(err)
	}
	edit(&c)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var chain ledger.Chain
	g, err = ledger.Seal(id, &chain, "", ledger.KindCharter, c, c.Created)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Alliance = g.ID()
	if err := writeFile(filepath.Join(dir, fileGenesis), g.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := saveChain(dir, chain); err != nil {
		t.Fatal(err)
	}
	if err := writeConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
}

// rogue is an admitted member driven by the test rather than by Run: it
// signs with its real key and chains correctly, and says what it likes.
type rogue struct {
	id       ledger.Identity
	chain    ledger.Chain
	alliance string
	bus      *natsbus.Bus
}

func openRogue(t *testing.T, dir string) *rogue {
	t.Helper()
	id, err := ledger.LoadIdentity(filepath.Join(dir, fileIdentity))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := loadChain(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	bus, err := natsbus.Open(ctx, cfg.NATS, cfg.Alliance, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	return &rogue{id: id, chain: chain, alliance: cfg.Alliance, bus: bus}
}

// seal signs the rogue's next envelope, dated at.
func (r *rogue) seal(t testing.TB, kind ledger.Kind, body any, at time.Time) ledger.Envelope {
	t.Helper()
	env, err := ledger.Seal(r.id, &r.chain, r.alliance, kind, body, at.UTC())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// publish publishes env and returns its stream position.
func (r *rogue) publish(t testing.TB, env ledger.Envelope) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	seq, _, err := r.bus.Publish(ctx, env.ID(), env.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// applied is how far member m's fold has read the ledger.
func (m *Member) applied() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fold.Applied()
}

// foldView is what a member's fold holds, for comparing members.
type foldView struct {
	decisions []string // value scenario reporters, sorted
	members   []alliance.MemberState
}

func (m *Member) view(at time.Time) foldView {
	m.mu.Lock()
	defer m.mu.Unlock()
	var v foldView
	for _, d := range m.fold.Decisions(at) {
		rs := make([]string, len(d.Reporters))
		for i, r := range d.Reporters {
			rs[i] = string(r)
		}
		v.decisions = append(v.decisions, fmt.Sprintf("%s %s %s %s", d.Value, d.Type, d.Scenario, strings.Join(rs, ",")))
	}
	slices.Sort(v.decisions)
	v.members = m.fold.Members()
	return v
}

// waitApplied waits until every member has folded the ledger up to seq.
func waitApplied(t *testing.T, ms []*Member, seq uint64, within time.Duration) {
	t.Helper()
	end := time.Now().Add(within)
	for _, m := range ms {
		for m.applied() < seq {
			if time.Now().After(end) {
				t.Fatalf("member %s applied %d of %d after %v", m.ID(), m.applied(), seq, within)
			}
			time.Sleep(10 * time.Millisecond) // polling a fold that other goroutines drive, with a deadline
		}
	}
}

// lastSeq is the ledger's newest position, read through member m's bus.
func lastSeq(t *testing.T, m *Member) uint64 {
	t.Helper()
	m.mu.Lock()
	bus := m.bus
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	last, err := bus.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// sameFold fails the test unless every member folded the same decisions
// and member states.
func sameFold(t *testing.T, ms []*Member, at time.Time) foldView {
	t.Helper()
	first := ms[0].view(at)
	for _, m := range ms[1:] {
		v := m.view(at)
		if !slices.Equal(v.decisions, first.decisions) {
			t.Errorf("member %s folded other decisions than %s:\n%v\nvs\n%v", m.ID(), ms[0].ID(), v.decisions, first.decisions)
		}
		if len(v.members) != len(first.members) {
			t.Errorf("member %s knows %d members, %s %d", m.ID(), len(v.members), ms[0].ID(), len(first.members))
			continue
		}
		for i := range v.members {
			a, b := v.members[i], first.members[i]
			if a.ID != b.ID || a.Flagged != b.Flagged || a.Expelled != b.Expelled || !slices.Equal(a.PublicKey, b.PublicKey) {
				t.Errorf("member %s sees member %s as %+v, %s as %+v", m.ID(), a.ID, a, ms[0].ID(), b)
			}
		}
	}
	return first
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMiB is the process's peak resident set (VmHWM), 0 if unknown.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
