// Package syslog receives syslog messages (RFC 3164 and RFC 5424) over UDP
// and TCP (RFC 6587 octet-counting and newline framing) and hands them on as
// structured Lines: program, PID, host and time from the header, the message
// as the text.
//
// It listens on loopback unless told otherwise (the default is
// udp://127.0.0.1:5514): a local rsyslog or syslog-ng forwards to it.
// Everything a sender controls is bounded: message size (MaxMessage),
// concurrent TCP connections and how long an idle one is kept.
package syslog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/phalanx-defence/phalanx/source"
)

// Defaults.
const (
	DefaultListen         = "udp://127.0.0.1:5514"
	DefaultMaxConnections = 64
	DefaultIdleTimeout    = 5 * time.Minute
)

// Config says where to listen. It is embedded in phalanx's configuration
// file.
type Config struct {
	// Listen is "udp://HOST:PORT" or "tcp://HOST:PORT" (DefaultListen if
	// empty). Keep it on loopback unless remote hosts must send here: the
	// sender of a message is not authenticated.
	Listen string `yaml:"listen,omitempty"`
	// Hint names the parser for these lines; empty means auto-detect.
	Hint string `yaml:"hint,omitempty"`
	// MaxConnections bounds concurrent TCP senders (DefaultMaxConnections
	// if zero); more are refused.
	MaxConnections int `yaml:"max_connections,omitempty"`
	// IdleTimeout closes a TCP connection that sends nothing for this long
	// (DefaultIdleTimeout if zero).
	IdleTimeout time.Duration `yaml:"idle_timeout,omitempty"`
}

// Source is a listening syslog receiver. New binds the socket, Run serves
// it, Close releases it.
type Source struct {
	cfg     Config
	logger  *slog.Logger
	stats   source.Stats
	dec     *decoder
	origin  string
	pc      net.PacketConn // udp
	ln      net.Listener   // tcp
	closing sync.Once

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open TCP connections, at most MaxConnections
}

// New checks cfg and binds the socket, so that a port in use is reported
// before anything runs.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	network, addr, ok := strings.Cut(cfg.Listen, "://")
	if !ok || (network != "udp" && network != "tcp") {
		return nil, fmt.Errorf("source/syslog: listen %q: write udp://HOST:PORT or tcp://HOST:PORT, such as %s", cfg.Listen, DefaultListen)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("source/syslog: listen %q: %w", cfg.Listen, err)
	}
	s := &Source{cfg: cfg, logger: logger.With("component", "source/syslog"), dec: newDecoder(), conns: make(map[net.Conn]struct{})}
	if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
		s.logger.Warn("syslog listens beyond loopback: any host that can reach it can inject log lines", "listen", cfg.Listen)
	}
	switch network {
	case "udp":
		s.pc, err = net.ListenPacket("udp", addr)
		if err == nil {
			s.origin = "syslog+udp:" + s.pc.LocalAddr().String()
		}
	case "tcp":
		s.ln, err = net.Listen("tcp", addr)
		if err == nil {
			s.origin = "syslog+tcp:" + s.ln.Addr().String()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("source/syslog: listen on %s (choose a free port, or stop what holds it): %w", cfg.Listen, err)
	}
	return s, nil
}

// Addr is the address the source listens on (with the real port when the
// configured one was 0).
func (s *Source) Addr() net.Addr {
	if s.pc != nil {
		return s.pc.LocalAddr()
	}
	return s.ln.Addr()
}

// Stats returns the source's counters.
func (s *Source) Stats() *source.Stats { return &s.stats }

// Close stops listening and closes every connection. Run calls it when ctx
// ends; calling it again is harmless.
func (s *Source) Close() error {
	var err error
	s.closing.Do(func() {
		if s.pc != nil {
			err = s.pc.Close()
		}
		if s.ln != nil {
			err = s.ln.Close()
		}
	})
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("source/syslog: close: %w", err)
	}
	return nil
}

// Run receives messages and sends them to out until ctx ends, then closes
// the socket and returns nil.
func (s *Source) Run(ctx context.Context, out chan<- source.Line) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-ctx.Done()
		s.Close()
		return nil
	})
	if s.pc != nil {
		g.Go(func() error { return s.serveUDP(ctx, out) })
	} else {
		g.Go(func() error { return s.serveTCP(ctx, g, out) })
	}
	return g.Wait()
}

func (s *Source) serveUDP(ctx context.Context, out chan<- source.Line) error {
	buf := make([]byte, MaxMessage+1) // one more, to see an oversized datagram
	for {
		n, _, err := s.pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("source/syslog: receive: %w", err)
		}
		if n > MaxMessage {
			s.stats.Dropped.Add(1)
			continue
		}
		if err := s.emit(ctx, buf[:n], out); err != nil {
			return nil
		}
	}
}

func (s *Source) serveTCP(ctx context.Context, g *errgroup.Group, out chan<- source.Line) error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors and the like: wait rather than spin.
			s.logger.Warn("accept failed", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		full := len(s.conns) >= s.cfg.MaxConnections
		if !full {
			s.conns[c] = struct{}{}
		}
		s.mu.Unlock()
		if full {
			s.stats.Dropped.Add(1)
			s.logger.Debug("too many syslog connections; refusing one", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		if ctx.Err() != nil { // Close may have run before c was recorded
			c.Close()
			return nil
		}
		g.Go(func() error {
			s.serveConn(ctx, c, out)
			return nil
		})
	}
}

// serveConn reads frames until the peer closes, misbehaves or idles.
func (s *Source) serveConn(ctx context.Context, c net.Conn, out chan<- source.Line) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	sc := bufio.NewScanner(&idleReader{c: c, idle: s.cfg.IdleTimeout})
	sc.Buffer(make([]byte, 4<<10), MaxMessage+8)
	sc.Split(Frame)
	for sc.Scan() {
		if err := s.emit(ctx, sc.Bytes(), out); err != nil {
			return
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		s.stats.Dropped.Add(1)
		s.logger.Debug("closing syslog connection", "remote", c.RemoteAddr().String(), "err", err)
	}
}

func (s *Source) emit(ctx context.Context, msg []byte, out chan<- source.Line) error {
	l, ok := s.dec.decode(msg)
	if !ok {
		return nil
	}
	l.Hint, l.Origin = s.cfg.Hint, s.origin
	s.stats.Count(l)
	select {
	case out <- l:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idleReader pushes the read deadline forward before every read, so a
// connection is closed after IdleTimeout of silence, not of total time.
type idleReader struct {
	c    net.Conn
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	if err := r.c.SetReadDeadline(time.Now().Add(r.idle)); err != nil {
		return 0, err
	}
	return r.c.Read(p)
}

var _ io.Reader = (*idleReader)(nil)
