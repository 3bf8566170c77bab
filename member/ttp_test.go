package member

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/source/file"
)

// Time to protect, in one process: a founder (hosting the embedded hub)
// and n-1 members that joined with invitations, each with its own data
// directory, NATS connection, ordered consumer and API server. The
// founder follows an sshd log; an attack is six failed passwords from one
// address (the charter's ssh-bf, one reporter suffices), and a member is
// protected when its decision set first holds the address, seen through
// Decisions().Subscribe rather than by polling.
//
// The 100-member run takes about half a minute of setup on two cores, so
// it is opt-in: PHALANX_TTP100=1 (or the benchmark) runs it, and normal CI
// runs only the three-member variant, which takes about a second.
//
//	PHALANX_TTP100=1 go test -run 'TestTimeToProtect' -v ./member
//	go test -run '^$' -bench TimeToProtect -benchtime 20x ./member

const (
	// ttpAttacks bounds the test's attacks: 20 reports stay far inside
	// the charter's 600 reports a minute per member.
	ttpAttacks = 20
	// ttpMaxAttacks bounds the benchmark's (one attack per iteration):
	// beyond it the founder's reports would hit the charter's rate limit
	// and be rejected, which would measure the limit, not the alliance.
	ttpMaxAttacks = 500
	// ttpWait is how long one attack may take to reach every member
	// before the run fails: four times the promise of one second.
	ttpWait = 4 * time.Second
	// ttpSetupWait bounds starting the alliance and its warm-up attack.
	ttpSetupWait = 120 * time.Second
)

func TestTimeToProtect3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an alliance of three")
	}
	r := newTTP(t, 3)
	for range ttpAttacks {
		r.attack(t)
	}
	r.report(t)
}

func TestTimeToProtect100(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an alliance of 100")
	}
	if os.Getenv("PHALANX_TTP100") != "1" {
		t.Skip("about 30 s on two cores: set PHALANX_TTP100=1 (or run BenchmarkTimeToProtect)")
	}
	skipUnderRace(t)
	r := newTTP(t, ttpMembers(t))
	for range ttpAttacks {
		r.attack(t)
	}
	r.report(t)
}

// BenchmarkTimeToProtect: one attack per iteration, after the alliance is
// up (setup is outside the timed loop). Run with -benchtime 20x to bound
// the attacks; ns/op is one attack until every member is protected.
func BenchmarkTimeToProtect(b *testing.B) {
	for _, n := range []int{3, ttpMembers(b)} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			if n > 3 {
				skipUnderRace(b)
			}
			r := newTTP(b, n)
			for b.Loop() {
				r.attack(b)
			}
			b.StopTimer()
			r.report(b)
		})
	}
}

// ttpMembers is 100, or PHALANX_TTP_MEMBERS to find the largest alliance
// that a machine sets up in reasonable time.
func ttpMembers(tb testing.TB) int {
	s := os.Getenv("PHALANX_TTP_MEMBERS")
	if s == "" {
		return 100
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 2 {
		tb.Fatalf("PHALANX_TTP_MEMBERS=%q: want a number ≥ 2", s)
	}
	return n
}

// skipUnderRace: the race detector allows 8128 live goroutines, and 100
// members (each a NATS client, a consumer, an API server, and the hub's
// side of each connection) come close to or above it, at ten times the
// memory and CPU; the three-member variant covers the races.
func skipUnderRace(tb testing.TB) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				tb.Skip("100 members exceed what the race detector handles; TestTimeToProtect3 runs under -race")
			}
		}
	}
}

// ttpHit is member's first sight of attack's address in its set.
type ttpHit struct {
	attack, member int
	at             time.Time
}

type ttpRun struct {
	members []*Member
	log     *os.File
	addrs   []netip.Prefix       // attack i is from addrs[i]; addrs[0] is the warm-up
	index   map[netip.Prefix]int // addrs inverted, read-only once watchers run
	hits    chan ttpHit
	next    int // the next attack

	began  time.Time
	joins  time.Duration // Init, the founder up, every invitation and join
	setup  time.Duration // then until every member's API serves
	warmup time.Duration // then until the warm-up attack protects all

	last []time.Duration // per attack: until the last member was protected
	each []time.Duration // per member and attack
}

// newTTP starts an alliance of n in this process, with the founder
// following a log, and waits until a warm-up attack has reached every
// member: only then is every consumer known to be following the ledger.
func newTTP(tb testing.TB, n int) *ttpRun {
	tb.Helper()
	began := time.Now()
	now := began
	// 100 members would log every heartbeat they fold; the figures are
	// what this test is for.
	log := slog.New(slog.DiscardHandler)
	root := tb.TempDir()
	logPath := filepath.Join(root, "auth.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })

	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = filepath.Join(root, fmt.Sprintf("m%03d", i+1))
	}
	if _, err := Init(dirs[0], "ttp", "127.0.0.1:0", nil, now); err != nil {
		tb.Fatal(err)
	}

	r := &ttpRun{began: began, log: f, hits: make(chan ttpHit, 4*n), index: map[netip.Prefix]int{}}
	for i := range ttpMaxAttacks + 1 {
		// TEST-NET-3 then TEST-NET-2: public-looking, outside every
		// allowlist and the drill range.
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + i%250)}), 32)
		if i >= 250 {
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i - 250)}), 32)
		}
		r.addrs = append(r.addrs, p)
		r.index[p] = i
	}
	if len(r.index) != len(r.addrs) {
		tb.Fatal("attack addresses repeat")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make([]chan error, n)
	stopped := make(chan struct{})
	// Members stop before the founder: it hosts the hub, and members
	// whose hub vanished would spend their shutdown reconnecting.
	tb.Cleanup(func() {
		close(stopped)
		cancel()
		for i := len(r.members) - 1; i >= 0; i-- {
			select {
			case err := <-done[i]:
				if err != nil {
					tb.Errorf("member %d: Run: %v", i+1, err)
				}
			case <-time.After(deadline):
				tb.Errorf("member %d did not stop", i+1)
			}
		}
	})
	for i := range done {
		done[i] = make(chan error, 1)
	}
	run := func(i int) {
		m, err := Open(dirs[i], log)
		if err != nil {
			tb.Fatal(err)
		}
		if i == 0 {
			m.AddSource(file.Config{Paths: []string{logPath}, Hint: "sshd", FromStart: true})
		}
		r.members = append(r.members, m)
		go func() { done[i] <- m.Run(ctx) }()
	}
	// The founder first: it hosts the hub that Join fetches the charter
	// from and publishes the admission to.
	run(0)
	r.waitReady(tb, 0, done[0])
	for i := 1; i < n; i++ {
		tok, err := Invite(dirs[0], ledger.RoleMember, "", time.Hour, now)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := Join(tok, dirs[i], fmt.Sprintf("m%03d", i+1), nil, now); err != nil {
			tb.Fatal(err)
		}
	}
	r.joins = time.Since(began)
	for i := 1; i < n; i++ {
		run(i)
	}
	for i := range r.members {
		r.waitReady(tb, i, done[i])
	}
	r.setup = time.Since(began)

	for i, m := range r.members {
		ch, unsub := m.Decisions().Subscribe(64)
		tb.Cleanup(unsub)
		go r.watch(i, m, ch, stopped)
	}
	warm := time.Now()
	r.next = 0
	r.attackWithin(tb, ttpSetupWait)
	r.last, r.each = nil, nil // the warm-up is not a measurement
	r.warmup = time.Since(warm)
	tb.Logf("%d members: setup %v (founder up and %d joins after %v, then every member's API up), warm-up attack at all members after %v; %s",
		n, r.setup.Round(time.Millisecond), n-1, r.joins.Round(time.Millisecond), r.warmup.Round(time.Millisecond), machine())
	return r
}

func (r *ttpRun) waitReady(tb testing.TB, i int, done chan error) {
	tb.Helper()
	select {
	case <-r.members[i].ready:
	case err := <-done:
		done <- err // for the cleanup
		tb.Fatalf("member %d ended before it was ready: %v", i+1, err)
	case <-time.After(ttpSetupWait):
		tb.Fatalf("member %d not ready within %v", i+1, ttpSetupWait)
	}
}

// watch reports member i's first sight of each attack address. The time is
// taken on receipt: a subscriber's scheduling delay is part of the
// protection a firewall bouncer would see.
func (r *ttpRun) watch(i int, m *Member, ch <-chan decisions.Change, stopped <-chan struct{}) {
	seen := map[int]bool{}
	hit := func(a int, at time.Time) bool {
		if seen[a] {
			return true
		}
		seen[a] = true
		select {
		case r.hits <- ttpHit{attack: a, member: i, at: at}:
			return true
		case <-stopped:
			return false
		}
	}
	for c := range ch {
		at := time.Now()
		if c.Resync {
			// Changes were dropped: whatever attack address the set now
			// holds was added at the latest now.
			for p, a := range r.index {
				if _, ok := m.Decisions().Lookup(p.Addr()); ok && !hit(a, at) {
					return
				}
			}
		}
		if c.Op != decisions.Added {
			continue
		}
		if a, ok := r.index[c.Decision.Value]; ok && !hit(a, at) {
			return
		}
	}
}

func (r *ttpRun) attack(tb testing.TB) { r.attackWithin(tb, ttpWait) }

// attackWithin appends six failed passwords from the next address to the
// founder's log and waits until every member holds it; the clock starts
// when the sixth line, the one that overflows ssh-bf, is written.
func (r *ttpRun) attackWithin(tb testing.TB, wait time.Duration) {
	tb.Helper()
	a := r.next
	if a >= len(r.addrs) {
		tb.Fatalf("more than %d attacks: the founder's reports would exceed the charter's rate; use -benchtime %dx", ttpMaxAttacks, ttpAttacks)
	}
	r.next++
	src := r.addrs[a].Addr().String()
	var lines []string
	stamp := time.Now().Format(time.Stamp)
	for i := range 6 {
		lines = append(lines, fmt.Sprintf("%s host sshd[%d]: Failed password for root from %s port %d ssh2\n",
			stamp, 1000+i, src, 40000+i))
	}
	if _, err := r.log.WriteString(strings.Join(lines[:5], "")); err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	if _, err := r.log.WriteString(lines[5]); err != nil {
		tb.Fatal(err)
	}
	n := len(r.members)
	got := make([]time.Duration, n)
	have := 0
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for have < n {
		select {
		case h := <-r.hits:
			if h.attack != a {
				tb.Fatalf("member %d saw attack %d during attack %d", h.member+1, h.attack, a)
			}
			got[h.member] = h.at.Sub(start)
			have++
		case <-timeout.C:
			var missing []string
			for i, d := range got {
				if d == 0 {
					missing = append(missing, strconv.Itoa(i+1))
				}
			}
			tb.Fatalf("attack %d (%s): %d of %d members protected after %v; missing %s",
				a, src, have, n, wait, strings.Join(missing, ","))
		}
	}
	if worst := slices.Max(got); a > 0 && worst > 250*time.Millisecond {
		// Said at once, with when it happened: a slow attack that lines
		// up with the members' heartbeat rounds (every 10 s) is the load
		// of folding them, not the attack's path.
		tb.Logf("attack %d (%s): last member protected after %v, %v after setup",
			a, src, worst.Round(time.Millisecond), (time.Since(r.began) - r.setup).Round(time.Millisecond))
	}
	r.last = append(r.last, slices.Max(got))
	r.each = append(r.each, got...)
}

// report logs (and for a benchmark reports) p50 and p99 of the time until
// the last member is protected, over attacks, and of every member's
// latency, over members × attacks. With 20 attacks the first p99 is the
// slowest attack.
func (r *ttpRun) report(tb testing.TB) {
	tb.Helper()
	if len(r.last) == 0 {
		return
	}
	last, each := pcts(r.last), pcts(r.each)
	tb.Logf("%d members, %d attacks: all protected p50 %v p99 %v (max %v); per member p50 %v p99 %v; %s",
		len(r.members), len(r.last), last[0], last[1], last[2], each[0], each[1], machine())
	if b, ok := tb.(*testing.B); ok {
		b.ReportMetric(msOf(last[0]), "p50-all-ms")
		b.ReportMetric(msOf(last[1]), "p99-all-ms")
		b.ReportMetric(msOf(each[0]), "p50-member-ms")
		b.ReportMetric(msOf(each[1]), "p99-member-ms")
		b.ReportMetric(r.setup.Seconds(), "setup-s")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		if rss := rssMiB(); rss > 0 {
			b.ReportMetric(rss, "rss-MiB")
		}
	}
	// 250 ms at p99 is the target, reported rather than asserted: with
	// 100 members in one process on a shared machine, every member's
	// signature checks of every envelope (N² per heartbeat round, which
	// separate machines would share out) compete for the same cores. An
	// attack that reaches nobody within ttpWait fails the run instead.
	if last[1] > 250*time.Millisecond {
		tb.Logf("p99 until every member is protected is %v, over the 250 ms target", last[1])
	}
}

// pcts is p50, p99 and max of ds (nearest rank).
func pcts(ds []time.Duration) [3]time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p int) time.Duration { return s[min(len(s)-1, (len(s)*p+99)/100-1)] }
	return [3]time.Duration{rank(50), rank(99), s[len(s)-1]}
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// machine is the process's goroutines and resident memory, with all
// members running.
func machine() string {
	s := fmt.Sprintf("%d goroutines", runtime.NumGoroutine())
	if rss := rssMiB(); rss > 0 {
		s += fmt.Sprintf(", RSS %.0f MiB", rss)
	}
	return s
}

// rssMiB reads VmRSS on Linux; 0 elsewhere.
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
