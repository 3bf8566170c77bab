// Command load measures an alliance under a sustained stream of signed
// reports (issue 6): real member runtimes (package member) fold a ledger on
// a real embedded NATS JetStream server while reporters publish signed
// reports at a fixed rate, each against a distinct address; at the end
// every member is asked which of those addresses it enforces.
//
//	go run ./bench/load -members 3 -rate 10000 -duration 5m
//
// The program is the alliance's hub: it founds the alliance (a charter
// listing the reporting identities), hosts the ledger on an embedded NATS
// server, and invites the members, which join the way `phalanx alliance
// join` does and run as child processes (one per member, so that each
// member's memory and CPU are its own; -inproc runs them as goroutines
// instead, as the short CI test does).
//
// The charter's default rate limit is 600 reports a minute per member; a
// real alliance reaching 10,000 reports a second would have that many
// members. This one spreads the rate over -reporters identities listed in
// the charter and raises max_reports_per_minute to what each needs plus a
// quarter: say both when quoting a figure.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/member"
	"github.com/phalanx-defence/phalanx/natsbus"
)

// Config is one load run.
type Config struct {
	Members   int
	Reporters int
	Rate      int           // reports a second, all reporters together
	Batch     int           // most reports per envelope (1: one envelope each); 0: ledger.MaxReports
	Linger    time.Duration // how long a reporter in a burst waits for more reports to seal together
	Addresses int64         // distinct addresses the reports cycle through; 0: every report its own
	Duration  time.Duration
	InProc    bool          // members as goroutines rather than processes
	Drain     time.Duration // how long members may take to catch up at the end
	Dir       string        // data directories; a temporary one if empty
	Log       io.Writer     // progress lines; nil for none
}

// Result is what a run measured.
type Result struct {
	Date           string         `json:"date"`
	Members        int            `json:"members"`
	Reporters      int            `json:"reporters"`
	MaxPerMinute   int            `json:"charter_max_reports_per_minute"`
	TargetRate     int            `json:"target_rate"`
	Duration       string         `json:"duration"`
	Published      int64          `json:"published"` // acknowledged by the stream
	Addresses      int64          `json:"addresses"` // distinct addresses they were against
	Envelopes      int64          `json:"envelopes"` // the envelopes that carried them
	PublishErrors  int64          `json:"publish_errors"`
	AchievedRate   float64        `json:"achieved_rate"`
	LastSeq        uint64         `json:"last_seq"`
	HubPeakRSSMB   float64        `json:"hub_peak_rss_mb"` // hub + reporters (+ members with -inproc)
	HubCPUSeconds  float64        `json:"hub_cpu_seconds"`
	MemberResults  []MemberResult `json:"member_results"`
	LostAnyMember  int64          `json:"lost_max"`
	InProc         bool           `json:"inproc"`
	WallSeconds    float64        `json:"wall_seconds"`
	LoadAverage1m  string         `json:"loadavg_at_end"`
	MachineCPUs    int            `json:"machine_cpus"`
	MachineMemoryG float64        `json:"machine_memory_gb"`
}

func main() {
	var c Config
	var jsonOut bool
	flag.IntVar(&c.Members, "members", 3, "member runtimes folding the ledger")
	flag.IntVar(&c.Reporters, "reporters", 20, "reporting identities the rate is spread over (listed in the charter)")
	flag.IntVar(&c.Rate, "rate", 10000, "reports a second, all reporters together")
	flag.IntVar(&c.Batch, "batch", ledger.MaxReports, "most reports one envelope carries: a reporter seals every report already due together, as a member does with a burst (1: one envelope per report)")
	flag.DurationVar(&c.Linger, "linger", 20*time.Millisecond, "how long a reporter in a burst waits for more reports to seal together (the member's publisher waits 20ms)")
	flag.Int64Var(&c.Addresses, "addresses", 0, "distinct addresses the reports cycle through, each reported again by another reporter (0: every report against an address of its own)")
	flag.DurationVar(&c.Duration, "duration", 5*time.Minute, "how long to publish")
	flag.DurationVar(&c.Drain, "drain", 10*time.Minute, "how long members may take to catch up once publishing stops")
	flag.BoolVar(&c.InProc, "inproc", false, "run members as goroutines in this process instead of child processes")
	flag.StringVar(&c.Dir, "dir", "", "where the data directories go (default: a temporary directory, removed at the end)")
	flag.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (with -inproc: the members too)")
	memberDir := flag.String("member", "", "internal: run the member in this data directory (a child process)")
	readySeq := flag.Uint64("ready-seq", 0, "internal: the ledger position a child member reaches before it says ready")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *memberDir != "" {
		if err := runMember(ctx, *memberDir, *readySeq, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "load: member:", err)
			os.Exit(1)
		}
		return
	}
	c.Log = os.Stderr
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	res, err := Run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	if jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return
	}
	printResult(os.Stdout, res)
}

func printResult(w io.Writer, r Result) {
	fmt.Fprintf(w, "%s  %d members, %d reporters (charter max %d reports/min each), target %d reports/s for %s\n",
		r.Date, r.Members, r.Reporters, r.MaxPerMinute, r.TargetRate, r.Duration)
	fmt.Fprintf(w, "published %d (errors %d) in %d envelopes against %d addresses, achieved %.0f reports/s; ledger at seq %d\n", r.Published, r.PublishErrors, r.Envelopes, r.Addresses, r.AchievedRate, r.LastSeq)
	fmt.Fprintf(w, "hub+reporters: peak RSS %.0f MB, CPU %.1f s; wall %.0f s; load average at end %s (%d CPUs, %.0f GB)\n",
		r.HubPeakRSSMB, r.HubCPUSeconds, r.WallSeconds, r.LoadAverage1m, r.MachineCPUs, r.MachineMemoryG)
	fmt.Fprintf(w, "%-18s %9s %9s %6s %9s %9s %9s %9s %9s %8s %9s\n", "member", "expected", "present", "lost", "ttp_p50", "ttp_p99", "ttp_max", "catchup", "rss_mb", "heap_mb", "cpu_s")
	for _, m := range r.MemberResults {
		fmt.Fprintf(w, "%-18.18s %9d %9d %6d %8.1fms %8.1fms %8.0fms %8.1fs %9.0f %8.0f %9.1f\n", m.Member, m.Expected, m.Present, m.Lost,
			m.TTPp50ms, m.TTPp99ms, m.TTPmaxms, m.CatchUpSeconds, m.PeakRSSMB, m.PeakHeapMB, m.CPUSeconds)
		if !m.CaughtUp {
			fmt.Fprintf(w, "  NOT CAUGHT UP within the drain: folded %d of %d; missing decisions are behind, not necessarily lost\n", m.Applied, r.LastSeq)
		}
		if len(m.Rejections) > 0 {
			fmt.Fprintf(w, "  rejections: %v\n", m.Rejections)
		}
	}
	fmt.Fprintf(w, "missing at the worst member: %d\n", r.LostAnyMember)
}

// report is the i-th report, due (detected) at due.
func report(i, pool int64, due time.Time) ledger.Report {
	due = due.UTC()
	return ledger.Report{Value: netip.PrefixFrom(addrOf(i%pool), 32), Type: phalanx.Ban, Scenario: "ssh-bf",
		Duration: 2 * time.Hour, FirstSeen: due, LastSeen: due, Events: 6}
}

// addrOf is the i-th address: distinct for every report unless -addresses
// makes them cycle, so that a lost report is a missing decision.
func addrOf(i int64) netip.Addr {
	v := uint32(10<<24) + uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

const maxReports = 1<<24 - 1 // 10.0.0.0/8

// Run founds an alliance, starts the members, publishes for c.Duration,
// and asks every member what it enforces.
func Run(ctx context.Context, c Config) (Result, error) {
	if c.Members < 1 || c.Reporters < 1 || c.Rate < 1 || c.Duration <= 0 {
		return Result{}, errors.New("members, reporters, rate and duration must be positive")
	}
	if c.Addresses > maxReports || c.Addresses == 0 && int64(c.Rate)*int64(c.Duration/time.Second+1) > maxReports {
		return Result{}, fmt.Errorf("%d reports/s for %s against as many addresses is more than the %d addresses of 10.0.0.0/8: cycle through fewer with -addresses", c.Rate, c.Duration, maxReports)
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Minute
	}
	if c.Batch <= 0 || c.Batch > ledger.MaxReports {
		c.Batch = ledger.MaxReports
	}
	logf := func(format string, a ...any) {
		if c.Log != nil {
			fmt.Fprintf(c.Log, "load: "+format+"\n", a...)
		}
	}
	start := time.Now()
	dir := c.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "phalanx-load-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}

	// The alliance: a founder (this program, the hub) and the reporting
	// identities, all listed in the founding charter.
	founder, err := ledger.NewIdentity()
	if err != nil {
		return Result{}, err
	}
	now := time.Now()
	ch := charter.New("load", founder, "hub", nil, now)
	// Each reporter's share of the rate, plus a half: the fold counts on
	// stream time, and a hub short of CPU stores a reporter's envelopes in
	// bunches (with a quarter, 453 of 3M reports were refused so in a
	// 5-minute run on two saturated cores).
	perMinute := (c.Rate*60/c.Reporters + 1) * 3 / 2
	ch.Policy.MaxReportsPerMinute = max(perMinute, charter.DefaultPolicy().MaxReportsPerMinute)
	reporters := make([]ledger.Identity, c.Reporters)
	for i := range reporters {
		if reporters[i], err = ledger.NewIdentity(); err != nil {
			return Result{}, err
		}
		ch.Members = append(ch.Members, charter.Member{ID: reporters[i].ID, Name: fmt.Sprintf("reporter-%d", i),
			PublicKey: reporters[i].Public, Role: ledger.RoleMember})
	}
	var founderChain ledger.Chain
	genesis, err := ledger.Seal(founder, &founderChain, "", ledger.KindCharter, ch, now)
	if err != nil {
		return Result{}, fmt.Errorf("seal the charter: %w", err)
	}
	allianceID := genesis.ID()
	bus, err := natsbus.Open(ctx, natsbus.Config{Embedded: true, Listen: "127.0.0.1:-1", StoreDir: filepath.Join(dir, "hub")},
		allianceID, slog.New(slog.DiscardHandler))
	if err != nil {
		return Result{}, fmt.Errorf("hub: %w", err)
	}
	defer bus.Close()
	if _, _, err := bus.Publish(ctx, genesis.ID(), genesis.Encode()); err != nil {
		return Result{}, fmt.Errorf("publish the charter: %w", err)
	}
	hub := strings.TrimPrefix(bus.ClientURL(), "nats://")

	// The members join by invitation, as `phalanx alliance join` does.
	dirs := make([]string, c.Members)
	for i := range dirs {
		tok, err := charter.NewInvitation(founder, allianceID, ch.Name, genesis.ID(), hub, ledger.RoleMember, "", time.Hour, time.Now())
		if err != nil {
			return Result{}, err
		}
		dirs[i] = filepath.Join(dir, fmt.Sprintf("member-%d", i))
		if _, err := member.Join(tok, dirs[i], fmt.Sprintf("member-%d", i), nil, time.Now()); err != nil {
			return Result{}, fmt.Errorf("member %d: %w", i, err)
		}
	}
	readySeq, err := bus.LastSeq(ctx)
	if err != nil {
		return Result{}, err
	}
	members, err := startMembers(ctx, c, dirs, readySeq)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		for _, m := range members {
			m.stop()
		}
	}()
	logf("alliance %s: hub %s, %d members ready at seq %d; publishing %d reports/s for %s over %d reporters",
		allianceID[:12], hub, c.Members, readySeq, c.Rate, c.Duration, c.Reporters)

	// The reporters: one goroutine per identity (its chain must advance in
	// order), paced together so that report i leaves at start + i/rate.
	var next, published, failed, envelopes atomic.Int64
	total := int64(c.Rate) * int64(c.Duration) / int64(time.Second)
	pool := total
	if c.Addresses > 0 {
		pool = min(c.Addresses, total)
	}
	pubStart := time.Now()
	pctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, id := range reporters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var chain ledger.Chain
			var lastSeal time.Time
			due := func(i int64) time.Time { return pubStart.Add(time.Duration(i) * time.Second / time.Duration(c.Rate)) }
			for {
				i := next.Add(1) - 1
				if i >= total || pctx.Err() != nil {
					return
				}
				// What a member's publisher does in a burst (a report
				// envelope sealed less than a second before): it waits
				// -linger for more, and every report due by then leaves
				// with this one, in one envelope (up to -batch). LastSeen
				// is when the report was due, so time to protect includes
				// the wait.
				leave := due(i)
				if c.Batch > 1 && time.Since(lastSeal) < time.Second {
					leave = leave.Add(c.Linger)
				}
				if d := time.Until(leave); d > 0 {
					select {
					case <-time.After(d):
					case <-pctx.Done():
						return
					}
				}
				reports := []ledger.Report{report(i, pool, due(i))}
				for len(reports) < c.Batch {
					j := next.Load()
					if j >= total || due(j).After(time.Now()) || !next.CompareAndSwap(j, j+1) {
						break
					}
					reports = append(reports, report(j, pool, due(j)))
				}
				at := time.Now().UTC()
				lastSeal = at
				var env ledger.Envelope
				var err error
				if len(reports) == 1 {
					env, err = ledger.Seal(id, &chain, allianceID, ledger.KindReport, reports[0], at)
				} else {
					env, err = ledger.Seal(id, &chain, allianceID, ledger.KindReports, ledger.Reports{Reports: reports}, at)
				}
				if err == nil {
					// Not pctx: a report in flight when the time is up is
					// waited for, so that published counts exactly what
					// the stream holds.
					sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
					_, _, err = bus.Publish(sctx, env.ID(), env.Encode())
					scancel()
				}
				if err != nil {
					// The chain moved on sealing: a report that never
					// reached the stream leaves a gap the fold refuses
					// everything after. Count it and stop this reporter.
					failed.Add(int64(len(reports)))
					return
				}
				published.Add(int64(len(reports)))
				envelopes.Add(1)
			}
		}()
	}
	progressDone := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				logf("%4.0fs published %d (%.0f/s)", time.Since(pubStart).Seconds(), published.Load(), float64(published.Load())/time.Since(pubStart).Seconds())
			}
		}
	}()
	wg.Wait()
	close(progressDone)
	elapsed := time.Since(pubStart)
	lastSeq, err := bus.LastSeq(ctx)
	if err != nil {
		return Result{}, err
	}
	logf("published %d in %s; asking the members (ledger at seq %d)", published.Load(), elapsed.Round(time.Millisecond), lastSeq)

	res := Result{
		Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Members: c.Members, Reporters: c.Reporters,
		MaxPerMinute: ch.Policy.MaxReportsPerMinute, TargetRate: c.Rate, Duration: c.Duration.String(),
		Published: published.Load(), PublishErrors: failed.Load(), Envelopes: envelopes.Load(),
		AchievedRate: float64(published.Load()) / elapsed.Seconds(), LastSeq: lastSeq, InProc: c.InProc,
	}
	// Every address below next was either published or counted as failed;
	// the members check all the published ones. With failures the set of
	// published indices has holes, so expected is counted, not assumed.
	issued := min(next.Load(), total)
	results := make([]MemberResult, len(members))
	var rwg sync.WaitGroup
	for i, m := range members {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			results[i] = m.ask(query{LastSeq: lastSeq, Issued: min(issued, pool), Drain: c.Drain})
		}()
	}
	rwg.Wait()
	res.Addresses = min(res.Published, pool)
	for i := range results {
		results[i].Expected = res.Addresses
		results[i].Lost = max(0, res.Addresses-results[i].Present)
		results[i].CaughtUp = results[i].Applied >= lastSeq
		res.LostAnyMember = max(res.LostAnyMember, results[i].Lost)
		if results[i].Err != "" {
			logf("member %d: %s", i, results[i].Err)
		}
	}
	res.MemberResults = results
	res.HubPeakRSSMB, res.HubCPUSeconds = selfUsage()
	res.WallSeconds = time.Since(start).Seconds()
	res.LoadAverage1m, res.MachineCPUs, res.MachineMemoryG = machine()
	return res, nil
}

// runningMember is a member started by startMembers.
type runningMember struct {
	ask  func(query) MemberResult
	stop func()
}

func startMembers(ctx context.Context, c Config, dirs []string, readySeq uint64) ([]runningMember, error) {
	out := make([]runningMember, 0, len(dirs))
	fail := func(err error) ([]runningMember, error) {
		for _, m := range out {
			m.stop()
		}
		return nil, err
	}
	for _, d := range dirs {
		var m runningMember
		var in io.WriteCloser
		var outR io.Reader
		if c.InProc {
			mctx, cancel := context.WithCancel(ctx)
			inR, inW := io.Pipe()
			oR, oW := io.Pipe()
			done := make(chan struct{})
			go func() {
				defer close(done)
				if err := runMember(mctx, d, readySeq, inR, oW); err != nil {
					oW.CloseWithError(err)
				}
				oW.Close()
			}()
			in, outR = inW, oR
			m.stop = func() { cancel(); inW.Close(); <-done }
		} else {
			exe, err := os.Executable()
			if err != nil {
				return fail(err)
			}
			cmd := exec.CommandContext(ctx, exe, "-member", d, "-ready-seq", fmt.Sprint(readySeq))
			cmd.Stderr = os.Stderr
			if in, err = cmd.StdinPipe(); err != nil {
				return fail(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				return fail(err)
			}
			if err := cmd.Start(); err != nil {
				return fail(err)
			}
			outR = stdout
			m.stop = func() {
				in.Close()
				cmd.Process.Signal(os.Interrupt)
				cmd.Wait()
			}
		}
		br := bufio.NewReader(outR)
		line, err := br.ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			m.stop()
			return fail(fmt.Errorf("member %s did not start: %q %v", filepath.Base(d), line, err))
		}
		m.ask = func(q query) MemberResult {
			if err := json.NewEncoder(in).Encode(q); err != nil {
				return MemberResult{Err: err.Error()}
			}
			var r MemberResult
			if err := json.NewDecoder(br).Decode(&r); err != nil {
				return MemberResult{Err: err.Error()}
			}
			return r
		}
		out = append(out, m)
	}
	return out, nil
}

// selfUsage is this process's peak RSS (MB) and CPU time (s).
func selfUsage() (float64, float64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return float64(peakRSS()) / (1 << 20), cpu.Seconds()
}

// peakRSS reads VmHWM from /proc/self/status, in bytes.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}

func machine() (load string, cpus int, memG float64) {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		memG = float64(si.Totalram) * float64(si.Unit) / (1 << 30)
	}
	return load, numCPU(), memG
}
