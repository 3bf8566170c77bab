// Package demo runs phalanx's demonstration: an alliance of three members
// in one process, an attack played against the first one, and each
// decision shown as it reaches every member with its time to protect.
//
// Everything is local and temporary: the founder's embedded NATS server
// and every member's API listen on loopback ports the kernel chooses, the
// data directories live in one temporary directory removed at the end, and
// the attack is log lines the demo writes itself (addresses from the
// documentation ranges) into the files member 1 follows. Nothing needs
// root, a config or anything installed.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
)

// Defaults of Config.
const (
	DefaultMembers   = 3
	DefaultWaveEvery = 5 * time.Second
	// drainWait is how long a timed run waits, after its last line, for
	// the decisions still on their way: a thousand times the usual time to
	// protect, short enough that a broken alliance fails quickly.
	drainWait = 5 * time.Second
	// setupWait bounds starting the alliance.
	setupWait = 30 * time.Second
)

// Config says how to run the demo. The zero value runs three members
// until ctx ends, progress discarded.
type Config struct {
	// Duration, when positive, ends the demo by itself: no wave starts
	// that would not finish before it, and the decisions still on their
	// way are waited for (up to 5 s) before the summary. However slow the
	// start, a timed run plays at least one complete wave.
	Duration  time.Duration
	Members   int           // 0: DefaultMembers
	WaveEvery time.Duration // a new wave of attackers this often; 0: DefaultWaveEvery
	Out       io.Writer     // progress, human text; nil discards it
	Log       *slog.Logger  // the members' logs; nil discards them
}

// Summary is what a run showed. Times to protect are measured from the
// moment the line that tripped detection was written into member 1's log
// until the member's decision set held the address, seen through
// decisions.Set.Subscribe.
type Summary struct {
	Members   []MemberSummary `json:"members"`
	Decisions int             `json:"decisions"` // attack addresses member 1 decided on
	Attacks   int             `json:"attacks"`   // attackers played to the end
	// FalsePositives counts legitimate addresses that any member banned.
	FalsePositives int   `json:"false_positives"`
	DurationMS     int64 `json:"duration_ms"`
}

// MemberSummary is one member's figures.
type MemberSummary struct {
	ID   ledger.MemberID `json:"id"`
	Name string          `json:"name"`
	// Protected: the member holds a decision on every attacker played to
	// the end.
	Protected bool `json:"protected"`
	Decisions int  `json:"decisions"` // attack addresses it holds
	// TTPMS is the worst time to protect over the run, TTPP50MS the median
	// (nearest rank), in milliseconds.
	TTPMS    float64 `json:"ttp_ms"`
	TTPP50MS float64 `json:"ttp_p50_ms"`
}

// Run runs the demo until cfg.Duration has passed (when set) or ctx ends,
// and returns what it saw. An interrupted run (ctx ended) is not an error:
// its summary covers what was played.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	began := time.Now()
	if cfg.Members == 0 {
		cfg.Members = DefaultMembers
	}
	if cfg.Members < 2 {
		return Summary{}, errors.New("demo: an alliance needs at least 2 members")
	}
	if cfg.WaveEvery <= 0 {
		cfg.WaveEvery = DefaultWaveEvery
	}
	if cfg.WaveEvery < waveLength {
		return Summary{}, fmt.Errorf("demo: waves every %v would overlap: give at least %v", cfg.WaveEvery, waveLength)
	}
	if cfg.Duration < 0 {
		return Summary{}, errors.New("demo: the duration must not be negative")
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}

	root, err := os.MkdirTemp("", "phalanx-demo-")
	if err != nil {
		return Summary{}, fmt.Errorf("demo: temporary directory: %w (set TMPDIR to a writable directory)", err)
	}
	defer os.RemoveAll(root)
	auth, err := openLog(filepath.Join(root, "auth.log"))
	if err != nil {
		return Summary{}, err
	}
	defer auth.close()
	access, err := openLog(filepath.Join(root, "access.log"))
	if err != nil {
		return Summary{}, err
	}
	defer access.close()

	// The members run on their own context: the demo stops them only
	// after it has read their decision sets for the summary.
	mctx, stopMembers := context.WithCancel(context.WithoutCancel(ctx))
	al, err := startAlliance(mctx, root, cfg, auth.path, access.path)
	defer func() {
		stopMembers()
		al.wait(cfg.Log)
	}()
	if err != nil {
		return Summary{}, err
	}
	fmt.Fprintf(cfg.Out, "phalanx demo: an alliance of %d members in this process, ready after %v (ledger on nats://%s)\n",
		cfg.Members, time.Since(began).Round(time.Millisecond), al.hub)
	fmt.Fprintf(cfg.Out, "member-1 follows %s (sshd) and %s (nginx); the attacks are played against it\n", auth.path, access.path)
	fmt.Fprintln(cfg.Out, dashboardLine(al.apiAddr, al.dirs[0]))
	if cfg.Duration > 0 {
		fmt.Fprintf(cfg.Out, "running for %v\n", cfg.Duration)
	} else {
		fmt.Fprintln(cfg.Out, "press Ctrl-C to stop")
	}

	tr := newTracker(cfg.Out, al)
	for i, m := range al.members {
		ch, unsub := m.Decisions().Subscribe(256)
		defer unsub()
		go tr.watch(i, m, ch)
	}

	var deadline <-chan time.Time
	end := time.Time{}
	if cfg.Duration > 0 {
		end = began.Add(cfg.Duration)
		// A slow start (a loaded machine) must not leave a short run no
		// time for one complete wave: a summary of nothing shows nothing.
		if first := time.Now().Add(waveLength + 250*time.Millisecond); end.Before(first) {
			end = first
		}
		t := time.NewTimer(time.Until(end))
		defer t.Stop()
		deadline = t.C
	}
	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	trafficDone := make(chan error, 1)
	go func() { trafficDone <- play(tctx, cfg, end, tr, auth, access) }()

	var runErr error
	select {
	case <-ctx.Done():
	case <-deadline:
	case err := <-trafficDone:
		trafficDone <- err
	case err := <-al.failed:
		runErr = err
	}
	stopTraffic()
	if err := <-trafficDone; err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return Summary{}, runErr
	}
	if ctx.Err() == nil {
		// What is still on its way is part of the run; a member that
		// never gets it is what the summary must show.
		tr.drain(drainWait)
	}
	s := tr.summary()
	s.DurationMS = time.Since(began).Milliseconds()
	return s, nil
}

// dashboardLine says where to watch the demo: member 1's dashboard, with
// its API token in the URL's fragment (which browsers never send to the
// server) so that one click opens a working page.
func dashboardLine(apiAddr, dir string) string {
	tokenFile := filepath.Join(dir, "api.token")
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return fmt.Sprintf("dashboard: http://%s/ (paste the token from %s)", apiAddr, tokenFile)
	}
	return fmt.Sprintf("dashboard: http://%s/#token=%s\n"+
		"  or the API: curl -H \"Authorization: Bearer $(cat %s)\" http://%s/v1/decisions",
		apiAddr, url.QueryEscape(strings.TrimSpace(string(tok))), tokenFile, apiAddr)
}

// play writes the waves and the background traffic until ctx ends, or,
// for a timed run, until no further wave would finish before end.
func play(ctx context.Context, cfg Config, end time.Time, tr *tracker, auth, access *logFile) error {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	legitR := rand.New(rand.NewPCG(r.Uint64(), 6))
	errc := make(chan error, 1)
	lctx, stopLegit := context.WithCancel(ctx)
	defer func() { stopLegit(); <-errc }()
	go func() { errc <- legit(lctx, auth, access, legitR) }()

	wave := time.NewTimer(0)
	defer wave.Stop()
	for w := 0; ; w++ {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			errc <- err
			return err
		case <-wave.C:
		}
		if w >= maxWaves {
			fmt.Fprintf(cfg.Out, "every documentation address has been used after %d waves: no more attacks (restart the demo to play again)\n", w)
			<-ctx.Done()
			return nil
		}
		if !end.IsZero() && time.Until(end) < waveLength {
			// A wave cut short would leave attackers that never reached
			// the threshold: the run ends with the last complete wave.
			<-ctx.Done()
			return nil
		}
		wave.Reset(cfg.WaveEvery)
		as, steps := waveScript(w, auth, access, r)
		var desc []string
		for _, a := range as {
			desc = append(desc, fmt.Sprintf("%s from %s", a.kind, a.addr))
			tr.register(a)
		}
		fmt.Fprintf(cfg.Out, "wave %d: %s\n", w+1, strings.Join(desc, ", "))
		if err := playSteps(ctx, steps, tr); err != nil {
			return err
		}
	}
}

// playSteps writes a wave's lines at their offsets.
func playSteps(ctx context.Context, steps []step, tr *tracker) error {
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for _, s := range steps {
		t.Reset(time.Until(start.Add(s.at)))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		at, err := s.log.write(s.line)
		if err != nil {
			return fmt.Errorf("demo: writing %s: %w", s.log.path, err)
		}
		tr.wrote(s.addr, at, s.last)
	}
	return nil
}

// legit writes background traffic until ctx ends.
func legit(ctx context.Context, auth, access *logFile, r *rand.Rand) error {
	t := time.NewTicker(legitEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		l, line := legitLine(i, auth, access, r)
		if _, err := l.write(line); err != nil {
			return fmt.Errorf("demo: writing %s: %w", l.path, err)
		}
	}
}
