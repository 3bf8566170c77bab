package natsbus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startServer runs the embedded NATS server with JetStream and waits until
// it accepts connections.
func startServer(cfg Config, alliance string, log *slog.Logger) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("natsbus: embedded NATS needs a store directory: set nats.store_dir (normally <data>/nats)")
	}
	opts := &server.Options{
		ServerName: "phalanx-" + alliance[:16],
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true, // the member owns signal handling
		DontListen: cfg.NoListen,
	}
	if !cfg.NoListen {
		listen := cfg.Listen
		if listen == "" {
			listen = DefaultListen
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("natsbus: nats.listen %q is not host:port: %w", listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < -1 || p > 65535 {
			return nil, fmt.Errorf("natsbus: nats.listen %q: port is not a number from 0 to 65535", listen)
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsbus: embedded NATS: %w", err)
	}
	ns.SetLoggerV2(slogAdapter{log.With("nats", "server")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("natsbus: embedded NATS did not start within 10 s (is %s already in use, or %s not writable?)", opts.Host+":"+strconv.Itoa(opts.Port), cfg.StoreDir)
	}
	return ns, nil
}

// slogAdapter routes the server's printf-style logging into the member's
// structured log. The server is chatty at notice level, so notices become debug.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) logf(level slog.Level, format string, v []any) {
	if !a.log.Enabled(context.Background(), level) {
		return
	}
	a.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

func (a slogAdapter) Noticef(format string, v ...any) { a.logf(slog.LevelDebug, format, v) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.logf(slog.LevelWarn, format, v) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.logf(slog.LevelError, format, v) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.logf(slog.LevelError, format, v) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.logf(slog.LevelDebug-4, format, v) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.logf(slog.LevelDebug-8, format, v) }
