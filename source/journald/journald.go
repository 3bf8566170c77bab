// Package journald follows the systemd journal by running
// `journalctl -o json --follow` (no cgo, no libsystemd) and remembers the
// cursor of the last entry its consumer has fully processed, so that a
// restart resumes right after it. If journalctl exits, it is started again
// with a growing delay.
//
// With a state directory, every line carries an acknowledgement
// (source.Line.Acker) and only acknowledged entries count as read: lines
// still in a channel or in the consumer's hands when the process is killed
// are read again on restart rather than lost. That is at-least-once, as for
// source/file with Config.Ack; a consumer that never acknowledges leaves the
// saved cursor where it was.
package journald

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/phalanx-defence/phalanx/source"
)

// Config says which journal entries to follow. It is embedded in phalanx's
// configuration file.
type Config struct {
	// Matches are journalctl matches, such as "_SYSTEMD_UNIT=ssh.service";
	// "+" between them means OR. Empty follows the whole journal.
	Matches []string `yaml:"matches,omitempty"`
	// Hint names the parser for these lines; empty means auto-detect.
	Hint string `yaml:"hint,omitempty"`
	// Journalctl is the journalctl executable ("journalctl" from PATH if empty).
	Journalctl string `yaml:"journalctl,omitempty"`

	// Backoff is the first delay before journalctl is started again after
	// it exits (DefaultBackoff if zero); it doubles up to MaxBackoff. Not
	// part of the file schema.
	Backoff time.Duration `yaml:"-"`
}

// Restart delays.
const (
	DefaultBackoff = time.Second
	MaxBackoff     = 30 * time.Second
)

const (
	cursorName = "journald-cursor"
	// maxRecord bounds one JSON line from journalctl; a message at
	// source.MaxLine can grow up to fourfold as a byte array.
	maxRecord = 4*source.MaxLine + 64<<10
	// saveEvery bounds how often the cursor is written while entries flow:
	// a crash re-delivers what was acknowledged in the last saveEvery on
	// top of what was not acknowledged yet.
	saveEvery = time.Second
	// maxMarks bounds the cursors kept for lines handed on but not yet
	// acknowledged (a consumer waiting for the broker holds its
	// acknowledgements back for as long as it is away): beyond it every
	// other one is forgotten, so an acknowledgement may resolve to an
	// earlier cursor, which repeats entries and never skips one.
	maxMarks = 16384
	// ackStream is the one stream of a journald source's positions:
	// Pos.End numbers the lines handed on, from 1.
	ackStream = 1
)

var matchRE = regexp.MustCompile(`^([A-Z0-9_]+=.*|\+)$`)

// Source follows the journal. It is not safe to Run twice.
type Source struct {
	cfg      Config
	path     string // resolved journalctl
	stateDir string
	logger   *slog.Logger
	stats    source.Stats

	mu     sync.Mutex // guards what follows, up to saveMu
	cursor string     // the last entry read: where journalctl restarts
	seq    int64      // Pos.End of the last line handed on
	marks  []mark     // entries read and not yet acknowledged, in order, at most maxMarks
	ackSeq int64      // the highest Pos.End acknowledged
	acked  string     // the cursor every line up to which is processed: what is saved

	saveMu sync.Mutex // serialises saves
	saved  string     // the cursor on disk; guarded by saveMu
}

// mark is an entry's cursor, done once line seq is acknowledged.
type mark struct {
	seq    int64
	cursor string
}

// New checks cfg, finds journalctl and loads the cursor persisted in
// stateDir. stateDir belongs to this source alone; an empty stateDir keeps
// the cursor in memory only.
func New(cfg Config, stateDir string, logger *slog.Logger) (*Source, error) {
	for _, m := range cfg.Matches {
		if !matchRE.MatchString(m) {
			return nil, fmt.Errorf("source/journald: match %q is not FIELD=value (an upper-case journal field, such as _SYSTEMD_UNIT=ssh.service) or +", m)
		}
	}
	if cfg.Journalctl == "" {
		cfg.Journalctl = "journalctl"
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	path, err := exec.LookPath(cfg.Journalctl)
	if err != nil {
		return nil, fmt.Errorf("source/journald: cannot find %s (install systemd's journalctl or set journalctl: to its path): %w", cfg.Journalctl, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{cfg: cfg, path: path, stateDir: stateDir, logger: logger.With("component", "source/journald")}
	if stateDir != "" {
		if err := os.MkdirAll(stateDir, 0o750); err != nil {
			return nil, fmt.Errorf("source/journald: create state directory: %w", err)
		}
		b, err := os.ReadFile(filepath.Join(stateDir, cursorName))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("source/journald: read cursor: %w", err)
		}
		s.cursor = strings.TrimSpace(string(b))
		s.acked, s.saved = s.cursor, s.cursor
	}
	return s, nil
}

// Stats returns the source's counters.
func (s *Source) Stats() *source.Stats { return &s.stats }

// Cursor returns the cursor of the last entry read (handed on or skipped);
// what is saved may be earlier (Acked).
func (s *Source) Cursor() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor
}

// Acked returns the cursor saved at the next save: that of the last entry
// whose line, and every line before it, the consumer has acknowledged
// (without a state directory, nothing is saved and it stays "").
func (s *Source) Acked() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Ack records that the lines handed on up to p.End have been fully
// processed. It never blocks; the cursor is saved within saveEvery.
func (s *Source) Ack(p source.Pos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Stream != ackStream || p.End <= s.ackSeq {
		return
	}
	s.ackSeq = p.End
	n := 0
	for n < len(s.marks) && s.marks[n].seq <= p.End {
		n++
	}
	if n > 0 {
		s.acked = s.marks[n-1].cursor
		s.marks = append(s.marks[:0], s.marks[n:]...)
	}
}

var _ source.Acker = (*Source)(nil)

// markRead records that the entry at cursor c is done once line seq (the
// last handed on before or with it) is acknowledged. Called with mu held.
func (s *Source) markRead(seq int64, c string) {
	if seq <= s.ackSeq {
		s.acked = c // every line up to it is processed already
		return
	}
	if n := len(s.marks); n > 0 && s.marks[n-1].seq == seq {
		s.marks[n-1].cursor = c // only the last entry of a line matters
		return
	}
	s.marks = append(s.marks, mark{seq, c})
	if len(s.marks) > maxMarks {
		// Keep every other mark, the newest included: an acknowledgement
		// between two kept marks resolves to the earlier one.
		k := 0
		for i := len(s.marks) % 2; i < len(s.marks); i += 2 {
			s.marks[k] = s.marks[i]
			k++
		}
		clear(s.marks[k:])
		s.marks = s.marks[:k]
	}
}

// args builds journalctl's command line: resume after the cursor, or start
// now on the first run (the journal's past was never ours to report).
func (s *Source) args() []string {
	a := []string{"-o", "json", "--follow", "--no-tail", "--all"}
	if c := s.Cursor(); c != "" {
		a = append(a, "--after-cursor="+c)
	} else {
		a = append(a, "--since=now")
	}
	return append(a, s.cfg.Matches...)
}

// Run follows the journal and sends its entries to out until ctx ends,
// then saves the acknowledged cursor and returns nil. It returns an error
// only if the cursor cannot be saved then. While running, it is saved every
// second (saveEvery) if it moved.
func (s *Source) Run(ctx context.Context, out chan<- source.Line) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { s.saveLoop(ctx); return nil })
	g.Go(func() error { s.run(ctx, out); return nil })
	g.Wait()
	return s.save()
}

// saveLoop saves the cursor every saveEvery while it moves: a crash
// re-delivers at most that much, a clean stop nothing.
func (s *Source) saveLoop(ctx context.Context) {
	t := time.NewTicker(saveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.save(); err != nil {
				s.logger.Warn("cannot save the journal cursor; a restart will repeat entries", "err", err)
			}
		}
	}
}

// run starts journalctl again whenever it exits, until ctx ends.
func (s *Source) run(ctx context.Context, out chan<- source.Line) {
	delay := s.cfg.Backoff
	for {
		started := time.Now()
		err := s.follow(ctx, out)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > MaxBackoff {
			delay = s.cfg.Backoff // it ran fine for a while: this is a new failure
		}
		s.logger.Warn("journalctl exited; starting it again", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, MaxBackoff)
	}
}

// Close exists for symmetry with the other sources; journalctl ends with
// Run's context.
func (s *Source) Close() error { return nil }

// follow runs journalctl once, until it exits or ctx ends.
func (s *Source) follow(ctx context.Context, out chan<- source.Line) error {
	cmd := exec.CommandContext(ctx, s.path, s.args()...)
	cmd.WaitDelay = 2 * time.Second
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("source/journald: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("source/journald: start %s: %w", s.path, err)
	}
	rerr := s.read(ctx, stdout, out)
	werr := cmd.Wait()
	if rerr != nil {
		return rerr
	}
	if werr != nil {
		return fmt.Errorf("source/journald: journalctl: %w: %s", werr, bytes.TrimSpace(stderr.Bytes()))
	}
	return errors.New("source/journald: journalctl exited")
}

func (s *Source) read(ctx context.Context, r io.Reader, out chan<- source.Line) error {
	split := source.NewSplitter(maxRecord)
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			ferr := split.Feed(buf[:n], func(rec []byte, truncated bool, _ int) error {
				if truncated {
					s.stats.Dropped.Add(1)
					return nil
				}
				return s.handle(ctx, rec, out)
			})
			if ferr != nil {
				return nil // ctx ended
			}
		}
		if err != nil {
			return nil // EOF, or the pipe closed as journalctl ended; Wait tells why
		}
	}
}

func (s *Source) handle(ctx context.Context, rec []byte, out chan<- source.Line) error {
	if len(bytes.TrimSpace(rec)) == 0 {
		return nil
	}
	e, err := Decode(rec)
	if err != nil {
		s.stats.Dropped.Add(1)
		s.logger.Debug("undecodable journal entry", "err", err)
		return nil
	}
	if e.Message == "" {
		// Nothing to hand on: done as soon as the line before it is.
		s.read1(e.Cursor, false)
		return nil
	}
	l := source.Line{Text: e.Message, Time: e.Time, Host: e.Hostname, Program: e.Program(), PID: e.PID,
		Hint: s.cfg.Hint, Origin: "journald", Truncated: e.Truncated}
	if s.stateDir != "" {
		// Marked before it is sent: the consumer may acknowledge it at once.
		l.Acker, l.Pos = s, source.Pos{Stream: ackStream, End: s.read1(e.Cursor, true)}
	}
	s.stats.Count(l)
	select {
	case out <- l:
	case <-ctx.Done():
		return ctx.Err()
	}
	if e.Cursor != "" {
		s.mu.Lock()
		s.cursor = e.Cursor
		s.mu.Unlock()
	}
	return nil
}

// read1 records one entry read, a line handed on or not, and returns the
// line's number. An entry without a line moves the read cursor at once;
// a line's cursor moves after it is sent (handle).
func (s *Source) read1(c string, line bool) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if line {
		s.seq++
	} else if c != "" {
		s.cursor = c
	}
	if c != "" && s.stateDir != "" {
		s.markRead(s.seq, c)
	}
	return s.seq
}

// save writes the cursor atomically if it moved.
func (s *Source) save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	c := s.Acked()
	if s.stateDir == "" || c == s.saved {
		return nil
	}
	path := filepath.Join(s.stateDir, cursorName)
	tmp, err := os.CreateTemp(s.stateDir, "."+cursorName+".*")
	if err != nil {
		return fmt.Errorf("source/journald: save cursor: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(c + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("source/journald: save cursor: %w", err)
	}
	s.saved = c
	return nil
}

// tailBuffer keeps the last max bytes written to it: journalctl's last
// complaint, without letting its stderr grow without bound.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.b...)
}
