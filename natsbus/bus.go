// Package natsbus carries an alliance's ledger over NATS JetStream: one
// append-only stream per alliance, de-duplicated by envelope id. A small
// alliance runs it embedded in its hub member (one binary, file store in the
// member's data directory); a larger one points every member at an external
// NATS cluster and asks for three replicas.
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultListen is where an embedded hub accepts other members: loopback
// only, so that nothing is exposed until the operator says so.
const DefaultListen = "127.0.0.1:4222"

// dupWindow is how long the stream remembers envelope ids; a member that
// retries a publish across a hub restart or a partition does so well within it.
const dupWindow = 10 * time.Minute

// TLS names the PEM files used to reach an external NATS cluster.
type TLS struct {
	CA   string `yaml:"ca,omitempty"`
	Cert string `yaml:"cert,omitempty"`
	Key  string `yaml:"key,omitempty"`
}

// Config says where the alliance's NATS is: embedded in this process, or an
// external cluster.
type Config struct {
	// Embedded runs a NATS server with JetStream in this process (the hub of a small alliance).
	Embedded bool `yaml:"embedded,omitempty"`
	// Listen is the host:port other members connect to; default DefaultListen.
	// Port -1 picks a free port (tests).
	Listen string `yaml:"listen,omitempty"`
	// NoListen runs the embedded server without a client port: in-process only (tests).
	NoListen bool `yaml:"-"`
	// StoreDir is the JetStream file store; the caller sets it to <data>/nats.
	StoreDir string `yaml:"store_dir,omitempty"`
	// URLs, CredsFile and TLS reach an external cluster when not Embedded.
	URLs      []string `yaml:"urls,omitempty"`
	CredsFile string   `yaml:"creds_file,omitempty"`
	TLS       *TLS     `yaml:"tls,omitempty"`
	// Replicas of the ledger stream: 1 embedded (the default), 3 on a cluster.
	Replicas int `yaml:"replicas,omitempty"`
}

// Message is one ledger entry as the stream holds it.
type Message struct {
	Seq  uint64
	Time time.Time // server-assigned stream timestamp
	Data []byte
}

// Bus is a connection to the alliance's ledger stream, and the embedded
// server when this member is the hub.
type Bus struct {
	log     *slog.Logger
	ns      *server.Server // nil unless embedded
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  string
	subject string
	url     string

	closed    chan struct{} // closed by the client when the connection is closed for good
	closeOnce sync.Once
	closeErr  error
}

// StreamName is the ledger stream's name for an alliance.
func StreamName(alliance string) string { return "LEDGER_" + alliance[:16] }

// Subject is the ledger's subject for an alliance. A hex alliance id has no
// '.', so it stays one token.
func Subject(alliance string) string { return "phalanx." + alliance + ".ledger" }

func checkAlliance(alliance string) error {
	if len(alliance) < 16 {
		return fmt.Errorf("natsbus: alliance id %q is shorter than 16 hex digits: pass the alliance's full id", alliance)
	}
	for _, c := range alliance {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("natsbus: alliance id %q is not lowercase hex: pass the alliance's full id", alliance)
		}
	}
	return nil
}

// Open starts the embedded server when cfg.Embedded, connects (in-process
// when embedded), and makes sure the alliance's ledger stream exists. A
// client whose hub is not reachable yet keeps trying until ctx ends.
func Open(ctx context.Context, cfg Config, alliance string, log *slog.Logger) (*Bus, error) {
	if err := checkAlliance(alliance); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "natsbus")
	b := &Bus{log: log, stream: StreamName(alliance), subject: Subject(alliance), closed: make(chan struct{})}
	opts := []nats.Option{
		nats.Name("phalanx " + alliance[:16]),
		// A member outlives any hub restart or partition: never give up.
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		// A link that goes down silently (a partition, a cable) leaves a
		// TCP connection that looks alive; the client's default pings
		// (every 2 min) would say "connected" for minutes. Pinging every
		// pingEvery notices within two intervals, so health and
		// phalanx_nats_connected tell the truth and reconnection starts.
		nats.PingInterval(pingEvery),
		nats.MaxPingsOutstanding(2),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS asynchronous error", "err", err)
		}),
	}
	var url string
	if cfg.Embedded {
		ns, err := startServer(cfg, alliance, log)
		if err != nil {
			return nil, err
		}
		b.ns = ns
		opts = append(opts, nats.InProcessServer(ns))
		url = ns.ClientURL()
		if !cfg.NoListen {
			b.url = url
		}
	} else {
		if len(cfg.URLs) == 0 {
			return nil, errors.New("natsbus: no NATS URLs: set nats.urls to the hub's or cluster's client URLs, or nats.embedded: true on the hub")
		}
		url = strings.Join(cfg.URLs, ",")
		b.url = url
		if cfg.CredsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredsFile))
		}
		if cfg.TLS != nil {
			if cfg.TLS.CA != "" {
				opts = append(opts, nats.RootCAs(cfg.TLS.CA))
			}
			if cfg.TLS.Cert != "" || cfg.TLS.Key != "" {
				opts = append(opts, nats.ClientCert(cfg.TLS.Cert, cfg.TLS.Key))
			}
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("natsbus: connect to %s: %w", url, err)
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("natsbus: jetstream: %w", err)
	}
	b.js = js
	replicas := cfg.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	sc := jetstream.StreamConfig{
		Name:       b.stream,
		Subjects:   []string{b.subject},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardNew, // no limits are set: nothing old is ever dropped
		Duplicates: dupWindow,
		Replicas:   replicas,
		// The ledger is append-only; deleting entries would break every
		// member's replay.
		DenyDelete: true,
		DenyPurge:  true,
	}
	if err := retry(ctx, func(ctx context.Context) error { return b.ensureStream(ctx, sc) }); err != nil {
		b.Close()
		return nil, fmt.Errorf("natsbus: create ledger stream %s on %s (is the hub or cluster running and JetStream enabled?): %w", b.stream, url, err)
	}
	return b, nil
}

// ensureStream creates the ledger stream unless it exists. An existing one
// is left as it is: a member that does not say how many replicas it wants
// must not shrink a stream the cluster's operator made with three.
func (b *Bus) ensureStream(ctx context.Context, sc jetstream.StreamConfig) error {
	s, err := b.js.Stream(ctx, sc.Name)
	if err == nil {
		if have := s.CachedInfo().Config.Replicas; have != sc.Replicas {
			b.log.Info("ledger stream exists with other replicas; left as is", "stream", sc.Name, "replicas", have, "configured", sc.Replicas)
		}
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	_, err = b.js.CreateStream(ctx, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil // another member created it first
	}
	return err
}

// pingEvery is how often the client checks that the server still answers.
const pingEvery = 5 * time.Second

// reconnectDelay backs off from 100 ms to 2 s; the client adds jitter.
// The cap is what a member waits, at worst, once its link or hub is back:
// a connection attempt every 2 s costs a client nothing.
func reconnectDelay(attempts int) time.Duration {
	d := 100 * time.Millisecond << min(attempts, 5)
	return min(d, 2*time.Second)
}

// Publish appends one envelope's bytes with Nats-Msg-Id = id and waits for
// the stream's ack; dup reports that the stream already had that id. It
// retries while the stream is briefly unreachable (a restart, a leader
// election) until ctx ends: the id makes retries harmless.
func (b *Bus) Publish(ctx context.Context, id string, data []byte) (seq uint64, dup bool, err error) {
	if id == "" {
		return 0, false, errors.New("natsbus: publish: empty message id")
	}
	err = retry(ctx, func(ctx context.Context) error {
		ack, err := b.js.Publish(ctx, b.subject, data, jetstream.WithMsgID(id), jetstream.WithExpectStream(b.stream))
		if err != nil {
			return err
		}
		seq, dup = ack.Sequence, ack.Duplicate
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("natsbus: publish %s: %w", id, err)
	}
	return seq, dup, nil
}

// LastSeq is the sequence of the newest ledger entry, 0 when empty.
func (b *Bus) LastSeq(ctx context.Context) (uint64, error) {
	var last uint64
	err := retry(ctx, func(ctx context.Context) error {
		s, err := b.js.Stream(ctx, b.stream)
		if err != nil {
			return err
		}
		last = s.CachedInfo().State.LastSeq
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("natsbus: last sequence: %w", err)
	}
	return last, nil
}

// ClientURL is the URL other members use: the embedded server's client
// address, or the configured cluster URLs; "" for an in-process-only server.
func (b *Bus) ClientURL() string { return b.url }

// Connected reports whether the connection to NATS is up right now.
func (b *Bus) Connected() bool { return b.nc != nil && b.nc.IsConnected() }

// Close drains the connection and shuts the embedded server down.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		if b.nc != nil {
			if err := b.nc.Drain(); err != nil {
				// Not connected (yet): nothing to drain, close outright.
				b.nc.Close()
			}
			// Drain is asynchronous; the embedded server must outlive it.
			<-b.closed
		}
		b.shutdownServer()
	})
	return b.closeErr
}

func (b *Bus) shutdownServer() {
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
}

// retry runs op with a per-attempt deadline until it succeeds, fails for a
// reason retrying cannot fix, or ctx ends.
func retry(ctx context.Context, op func(context.Context) error) error {
	delay := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := op(actx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil {
			if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
			}
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// transient reports errors seen while a server restarts, a client
// reconnects or a cluster elects a stream leader.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 503: JetStream not (yet) available, e.g. no meta leader.
		return apiErr.Code == 503
	}
	return errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}
