package demo

import (
	"context"
	"fmt"
	"github.com/phalanx-defence/phalanx/dashboard"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/member"
	"github.com/phalanx-defence/phalanx/source/file"
)

// alliance is the demo's members, running in this process.
type alliance struct {
	dirs    []string
	names   []string
	members []*member.Member
	done    []chan error
	failed  chan error // the first member whose Run ended on its own
	hub     string     // the founder's NATS address
	apiAddr string     // member 1's API
}

// startAlliance founds an alliance in root, invites and joins the other
// members, runs them all, and returns once every member's API answers and
// its fold holds every admission: from then on an attack measures the
// alliance, not its start.
func startAlliance(ctx context.Context, root string, cfg Config, authLog, accessLog string) (*alliance, error) {
	now := time.Now()
	al := &alliance{failed: make(chan error, cfg.Members)}
	for i := range cfg.Members {
		al.dirs = append(al.dirs, filepath.Join(root, fmt.Sprintf("member-%d", i+1)))
		al.names = append(al.names, fmt.Sprintf("member-%d", i+1))
	}
	info, err := member.Init(al.dirs[0], "demo", "127.0.0.1:0", nil, now)
	if err != nil {
		return al, fmt.Errorf("demo: founding the alliance: %w", err)
	}
	al.hub = info.Hub
	run := func(i int) error {
		m, err := member.Open(al.dirs[i], cfg.Log.With("member", al.names[i]))
		if err != nil {
			return fmt.Errorf("demo: %s: %w", al.names[i], err)
		}
		// Loopback only, on a port the kernel chooses: two demos, or a
		// demo beside a real member, never collide.
		m.SetAPIListen("127.0.0.1:0")
		if i == 0 {
			dashboard.Mount(m)
			m.AddSource(file.Config{Paths: []string{authLog}, Hint: "sshd", FromStart: true})
			m.AddSource(file.Config{Paths: []string{accessLog}, Hint: "nginx", FromStart: true})
		}
		done := make(chan error, 1)
		al.members = append(al.members, m)
		al.done = append(al.done, done)
		go func() {
			err := m.Run(ctx)
			if err == nil && ctx.Err() == nil {
				err = fmt.Errorf("stopped on its own")
			}
			if err != nil && ctx.Err() == nil {
				al.failed <- fmt.Errorf("demo: %s: %w (run with --log-level debug to see why)", al.names[i], err)
			}
			done <- err
		}()
		return nil
	}
	// The founder first: it hosts the hub that Join fetches the charter
	// from and publishes each admission to.
	if err := run(0); err != nil {
		return al, err
	}
	if err := al.waitReady(ctx, 0, 1); err != nil {
		return al, err
	}
	for i := 1; i < cfg.Members; i++ {
		tok, err := member.Invite(al.dirs[0], ledger.RoleMember, "", time.Hour, now)
		if err != nil {
			return al, fmt.Errorf("demo: inviting %s: %w", al.names[i], err)
		}
		if _, err := member.Join(tok, al.dirs[i], al.names[i], nil, now); err != nil {
			return al, fmt.Errorf("demo: %s joining: %w", al.names[i], err)
		}
	}
	for i := 1; i < cfg.Members; i++ {
		if err := run(i); err != nil {
			return al, err
		}
	}
	for i := range cfg.Members {
		// The charter and one admission per other member.
		if err := al.waitReady(ctx, i, uint64(cfg.Members)); err != nil {
			return al, err
		}
	}
	addr, err := os.ReadFile(filepath.Join(al.dirs[0], "api.addr"))
	if err != nil {
		return al, fmt.Errorf("demo: member-1's API address: %w", err)
	}
	al.apiAddr = strings.TrimSpace(string(addr))
	return al, nil
}

// waitReady polls member i's API until it is connected and has applied
// at least applied envelopes. The member package keeps its readiness to
// itself, and its API is what a user would ask; polling every 20 ms costs
// nothing beside the members' own start.
func (al *alliance) waitReady(ctx context.Context, i int, applied uint64) error {
	limit := time.NewTimer(setupWait)
	defer limit.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if c, err := member.Client(al.dirs[i]); err != nil {
			last = err
		} else {
			hctx, cancel := context.WithTimeout(ctx, time.Second)
			h, err := c.Health(hctx)
			cancel()
			switch {
			case err != nil:
				last = err
			case h.Connected && h.Applied >= applied:
				return nil
			default:
				last = fmt.Errorf("connected %v, applied %d of %d", h.Connected, h.Applied, applied)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: %s: %w", al.names[i], ctx.Err())
		case err := <-al.failed:
			return err
		case <-limit.C:
			return fmt.Errorf("demo: %s not ready after %v: %v (the machine may be overloaded; run with --log-level debug)", al.names[i], setupWait, last)
		case <-tick.C:
		}
	}
}

// wait waits for the members to stop, the founder last: it hosts the hub,
// and members whose hub vanished would spend their shutdown reconnecting.
func (al *alliance) wait(log *slog.Logger) {
	for i := len(al.done) - 1; i >= 0; i-- {
		select {
		case err := <-al.done[i]:
			if err != nil {
				log.Warn("demo: member stopped with an error", "member", al.names[i], "err", err)
			}
		case <-time.After(10 * time.Second):
			log.Warn("demo: member did not stop within 10 s", "member", al.names[i])
		}
	}
}
