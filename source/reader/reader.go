// Package reader is the source over any io.Reader — standard input ("-")
// or a log piped in — read line by line to its end.
package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/phalanx-defence/phalanx/source"
)

// Config describes a reader source.
type Config struct {
	// Hint names the parser for these lines; empty means auto-detect.
	Hint string `yaml:"hint,omitempty"`
	// Origin names the stream in metrics and evidence ("stdin" if empty).
	Origin string `yaml:"-"`
}

// Source reads lines from an io.Reader until its end.
type Source struct {
	r      io.Reader
	cfg    Config
	logger *slog.Logger
	stats  source.Stats
}

// New returns a source over r. Lines longer than source.MaxLine are cut;
// a last line without "\n" is still delivered at the end of r.
func New(r io.Reader, cfg Config, logger *slog.Logger) (*Source, error) {
	if r == nil {
		return nil, errors.New("source/reader: nil reader")
	}
	if cfg.Origin == "" {
		cfg.Origin = "stdin"
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{r: r, cfg: cfg, logger: logger.With("component", "source/reader")}, nil
}

// Stats returns the source's counters.
func (s *Source) Stats() *source.Stats { return &s.stats }

// deadliner is what *os.File and net.Conn offer to interrupt a blocked Read.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// Run sends r's lines to out. It returns nil at the end of r or when ctx
// ends, and the read error otherwise. A Read blocked when ctx ends is
// interrupted if r has SetReadDeadline (pipes, terminals, sockets);
// otherwise Run returns at once and the reading goroutine ends with the
// next Read, without sending anything more.
func (s *Source) Run(ctx context.Context, out chan<- source.Line) error {
	done := make(chan error, 1)
	go func() { done <- s.read(ctx, out) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if d, ok := s.r.(deadliner); ok && d.SetReadDeadline(time.Now()) == nil {
			<-done
		}
		return nil
	}
}

func (s *Source) read(ctx context.Context, out chan<- source.Line) error {
	split := source.NewSplitter(source.MaxLine)
	buf := make([]byte, 64<<10)
	emit := func(line []byte, truncated bool, _ int) error {
		l := source.Line{Text: string(line), Hint: s.cfg.Hint, Origin: s.cfg.Origin, Truncated: truncated}
		s.stats.Count(l)
		select {
		case out <- l:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		n, err := s.r.Read(buf)
		if n > 0 {
			if ferr := split.Feed(buf[:n], emit); ferr != nil {
				return nil // ctx ended
			}
		}
		if errors.Is(err, io.EOF) {
			if line, truncated, ok := split.Flush(); ok {
				if emit(line, truncated, 0) != nil {
					return nil
				}
			}
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("source/reader: read %s: %w", s.cfg.Origin, err)
		}
	}
}
