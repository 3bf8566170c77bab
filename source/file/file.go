// Package file follows log files the way `tail -F` does, and remembers
// where it stopped.
//
// It handles rename-and-create rotation (the old file is read to its end,
// and watched a little longer, before the new one is read from its start),
// copytruncate and truncation (a file that shrinks is read again from 0),
// symbolic links (the target is followed, and a new target is a rotation),
// globs (re-evaluated at every poll, so files that appear later are found and
// read from their start) and restarts: the offset of the end of the last line
// handed on is persisted per file, keyed by device and inode with a
// fingerprint of the file's first bytes to detect a reused inode, so a
// restart neither re-reads nor skips a line.
//
// With Config.Ack the saved offset is instead the end of the last line the
// consumer acknowledged (source.Line.Acker): lines still in a channel or in
// the consumer's hands when the process is killed are read again on
// restart rather than lost. That is at-least-once: what a consumer
// processed after its last acknowledgement reached the offsets file is
// processed again, and the consumer must make that harmless.
//
// Files are polled (default every 250 ms): polling sees every change on
// every file system, including network ones, for the cost of one stat per
// file per poll.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/phalanx-defence/phalanx/source"
)

// DefaultPoll is how often files are checked when Config.Poll is zero.
const DefaultPoll = 250 * time.Millisecond

// Config says which files to follow. It is embedded in phalanx's
// configuration file.
type Config struct {
	// Paths are files or glob patterns (filepath.Match syntax), for example
	// "/var/log/auth.log" or "/var/log/nginx/*access.log".
	Paths []string `yaml:"paths"`
	// Hint names the parser for these lines ("sshd", "nginx", ...); empty
	// means auto-detect.
	Hint string `yaml:"hint,omitempty"`
	// FromStart reads files seen for the first time from their start
	// instead of their end. Files that appear while running, and new files
	// after a rotation, are always read from their start.
	FromStart bool `yaml:"from_start,omitempty"`

	// Poll is how often files are checked for data, rotation and new glob
	// matches (DefaultPoll if zero). Not part of the file schema.
	Poll time.Duration `yaml:"-"`
	// Ack says the consumer acknowledges every line it has fully
	// processed (source.Acks); only acknowledged lines count as read when
	// offsets are saved. Without it a line counts once it is in the
	// output channel. Not part of the file schema.
	Ack bool `yaml:"-"`
}

// How long a file is still watched after its path stopped naming it (a
// rotation, a deletion) once it stops growing: a logger keeps writing the
// old file until it reopens its log.
const defaultRetireGrace = 10 * time.Second

// midDrainSave is how often offsets are saved while one poll reads a long
// backlog; otherwise they are saved after every poll that moved them.
const midDrainSave = time.Second

// Source follows the files of one Config. It is not safe to Run twice.
type Source struct {
	cfg      Config
	stateDir string
	logger   *slog.Logger
	stats    source.Stats

	// Owned by Run's goroutine.
	tails    map[string]*tail // by path, as the glob found it
	retired  []*tail          // rotated away, drained until quiet
	state    map[fileID]*entry
	warned   map[string]bool // paths whose open failure was logged, bounded by the glob matches
	dirty    bool
	lastSave time.Time
	lastSync time.Time // last fsync of the offsets file
	buf      []byte
	streams  map[uint32]*tail // by stream: open, retired and forgotten tails whose acknowledgements may still come
	nextID   uint32
	saveErr  bool // the last save failed (logged once until one succeeds)

	// Acknowledgements, from the consumer's goroutine.
	ackMu   sync.Mutex
	acked   map[uint32]int64 // stream → highest acknowledged end
	ackWake chan struct{}

	retireGrace time.Duration // defaultRetireGrace; shorter in tests
	onPoll      func()        // test hook: called after every poll
}

// tail is one open file.
type tail struct {
	path    string
	f       *os.File
	id      fileID
	readPos int64 // where the next read starts
	offset  int64 // end of the last line handed on
	acked   int64 // end of the last line acknowledged (= offset without Config.Ack): what is saved
	stream  uint32
	closed  bool // forgotten: only late acknowledgements still update its entry
	head    []byte
	split   *source.Splitter
	quiet   time.Time // since when the path is gone (or, retired, since the last growth)
	failed  bool      // a read failed and the file was closed
}

// New checks cfg and loads the offsets persisted in stateDir. stateDir
// belongs to this source alone (give each file source its own directory);
// an empty stateDir keeps offsets in memory only.
func New(cfg Config, stateDir string, logger *slog.Logger) (*Source, error) {
	if len(cfg.Paths) == 0 {
		return nil, errors.New("source/file: no paths configured: list the log files to follow under paths")
	}
	for _, p := range cfg.Paths {
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, fmt.Errorf("source/file: path %q is not a valid glob pattern: %w", p, err)
		}
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if stateDir != "" {
		if err := os.MkdirAll(stateDir, 0o750); err != nil {
			return nil, fmt.Errorf("source/file: create state directory: %w", err)
		}
	}
	st, err := loadState(stateDir)
	if err != nil {
		return nil, err
	}
	return &Source{
		cfg:      cfg,
		stateDir: stateDir,
		logger:   logger.With("component", "source/file"),
		tails:    make(map[string]*tail),
		state:    st,
		warned:   make(map[string]bool),
		buf:      make([]byte, 64<<10),
		streams:  make(map[uint32]*tail),
		acked:    make(map[uint32]int64),
		ackWake:  make(chan struct{}, 1),

		retireGrace: defaultRetireGrace,
	}, nil
}

// Stats returns the source's counters.
func (s *Source) Stats() *source.Stats { return &s.stats }

// Ack records that the lines of p.Stream up to p.End have been fully
// processed (Config.Ack). It never blocks: Run applies acknowledgements
// and saves them soon after (at most ackSaveGap later).
func (s *Source) Ack(p source.Pos) {
	s.ackMu.Lock()
	if p.End > s.acked[p.Stream] {
		s.acked[p.Stream] = p.End
	}
	s.ackMu.Unlock()
	select {
	case s.ackWake <- struct{}{}:
	default:
	}
}

var _ source.Acker = (*Source)(nil)

// ackSaveGap is the least time between two saves prompted by
// acknowledgements alone: a busy consumer acknowledges thousands of times
// a second, and the offsets file needs no more than a few writes a second
// to keep what a kill -9 makes us read again small.
const ackSaveGap = 50 * time.Millisecond

// applyAcks moves the acknowledgements received so far into the tails.
func (s *Source) applyAcks() {
	s.ackMu.Lock()
	if len(s.acked) == 0 {
		s.ackMu.Unlock()
		return
	}
	got := s.acked
	s.acked = make(map[uint32]int64, len(got))
	s.ackMu.Unlock()
	now := time.Now()
	for id, end := range got {
		t := s.streams[id]
		if t == nil || end <= t.acked {
			continue // a stream replaced by a truncation: its lines are gone
		}
		t.acked = min(end, t.offset)
		s.dirty = true
		if t.closed {
			s.record(t, now)
		}
		if t.closed && t.acked >= t.offset {
			delete(s.streams, id)
		}
	}
}

// newStream gives t a stream number of its own, so that acknowledgements
// of lines read before a truncation are not taken for the new content.
func (s *Source) newStream(t *tail) {
	delete(s.streams, t.stream)
	s.nextID++
	t.stream = s.nextID
	s.streams[t.stream] = t
}

// Run follows the files and sends their lines to out until ctx ends, then
// saves the offsets, closes the files and returns nil. It returns an error
// only if the offsets cannot be saved.
func (s *Source) Run(ctx context.Context, out chan<- source.Line) error {
	defer s.closeAll()
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	wake := s.watch(ctx)
	initial := true
	var ackTimer <-chan time.Time
	for {
		err := s.poll(ctx, out, initial)
		initial = false
		if s.onPoll != nil {
			s.onPoll()
		}
		// Offsets are written after every poll that read something, so
		// that a kill -9 right after a burst does not read it again on
		// restart (a write to the page cache survives the process); they
		// are fsynced at most every saveEvery, against a power loss.
		s.applyAcks()
		s.trySave()
		if err != nil {
			if ctx.Err() != nil {
				return s.finalSave()
			}
			return err
		}
	wait:
		select {
		case <-ctx.Done():
			return s.finalSave()
		case <-t.C:
		case <-wake:
		case <-s.ackWake:
			// The consumer caught up: save what it acknowledged, but not
			// more often than every ackSaveGap.
			if d := ackSaveGap - time.Since(s.lastSave); d > 0 {
				if ackTimer == nil {
					ackTimer = time.After(d)
				}
				goto wait
			}
			s.applyAcks()
			s.trySave()
			goto wait
		case <-ackTimer:
			ackTimer = nil
			s.applyAcks()
			s.trySave()
			goto wait
		}
	}
}

// finalSave saves the offsets when Run ends. Acknowledgements that come
// after it are lost on purpose: their lines are read again next time.
func (s *Source) finalSave() error {
	s.applyAcks()
	return s.save()
}

// trySave saves the offsets, and logs (once until it works again) when it
// cannot: a full or read-only disk must not stop detection, which goes on
// in memory; the previous offsets file stays intact (saves are atomic), so
// the cost is lines read again after a restart.
func (s *Source) trySave() {
	err := s.save()
	switch {
	case err != nil && !s.saveErr:
		s.saveErr = true
		s.logger.Error("cannot save read offsets; detection goes on, but a restart now would read again what was read since the last save. Free space in (or fix the permissions of) the state directory",
			"dir", s.stateDir, "err", err)
	case err == nil && s.saveErr:
		s.saveErr = false
		s.logger.Info("read offsets saved again", "dir", s.stateDir)
	}
}

// saveEvery bounds how often the offsets file is fsynced while lines flow.
const saveEvery = time.Second

// watch asks the kernel (inotify) to say when the followed files'
// directories change, so that a new line is read within milliseconds
// rather than at the next poll: the alliance promises protection within a
// second, and detection is the first step. Polling stays as the fallback
// (and for what inotify misses, such as network file systems). The
// returned channel is nil when no watch could be set up.
func (s *Source) watch(ctx context.Context) <-chan struct{} {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.logger.Debug("file: no inotify, polling only", "err", err)
		return nil
	}
	dirs := map[string]bool{}
	for _, p := range s.cfg.Paths {
		dirs[filepath.Dir(p)] = true
		if target, err := filepath.EvalSymlinks(p); err == nil {
			dirs[filepath.Dir(target)] = true
		}
	}
	for d := range dirs {
		if hasMeta(d) {
			continue // a glob in the directory part: polling finds those
		}
		if err := w.Add(d); err != nil {
			s.logger.Debug("file: cannot watch, polling", "dir", d, "err", err)
		}
	}
	wake := make(chan struct{}, 1)
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				select {
				case wake <- struct{}{}:
				default: // a poll is already due
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return wake
}

// Close releases the open files. Run closes them itself when it returns;
// Close is for a Source that was never run, and is safe to call twice.
func (s *Source) Close() error {
	s.closeAll()
	return nil
}

func (s *Source) closeAll() {
	for p, t := range s.tails {
		t.f.Close()
		delete(s.tails, p)
	}
	for _, t := range s.retired {
		t.f.Close()
	}
	s.retired = nil
}

// poll does one round: find files, read what is new, notice rotations.
// It returns a non-nil error only when ctx ended.
func (s *Source) poll(ctx context.Context, out chan<- source.Line, initial bool) error {
	now := time.Now()
	for _, p := range s.glob() {
		if _, ok := s.tails[p]; !ok {
			s.open(p, initial)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(s.tails)) {
		t := s.tails[p]
		if t == nil {
			continue
		}
		if err := s.follow(ctx, out, t, now); err != nil {
			return err
		}
	}
	kept := s.retired[:0]
	for _, t := range s.retired {
		before := t.readPos
		if err := s.drain(ctx, out, t); err != nil {
			return err
		}
		if t.readPos != before {
			t.quiet = now
		}
		if t.failed {
			continue
		}
		if now.Sub(t.quiet) > s.retireGrace {
			s.finish(ctx, out, t)
			s.forget(t, now)
			continue
		}
		kept = append(kept, t)
	}
	clear(s.retired[len(kept):])
	s.retired = kept
	return ctx.Err()
}

// glob returns the paths the patterns match now, sorted and deduplicated.
// A pattern without meta characters names its file even if it does not
// exist yet.
func (s *Source) glob() []string {
	var paths []string
	for _, p := range s.cfg.Paths {
		m, _ := filepath.Glob(p) // patterns were validated in New
		if len(m) == 0 && !hasMeta(p) {
			m = []string{p}
		}
		paths = append(paths, m...)
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

func hasMeta(p string) bool {
	for _, c := range p {
		switch c {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

// open starts following path. initial says the file existed when the
// source started, so without a saved offset it starts at its end.
func (s *Source) open(path string, initial bool) {
	f, err := os.Open(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !s.warned[path] {
			s.warned[path] = true
			s.logger.Warn("cannot open log file; fix its permissions or the path", "path", path, "err", err)
		}
		return
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return
	}
	delete(s.warned, path)
	id, ok := idOf(fi)
	if !ok {
		f.Close()
		return
	}
	// The same file under a second name: a symlink and its target both
	// matched, or a rotated file now matched as "name.1".
	for _, t := range s.tails {
		if t.id == id {
			f.Close()
			return
		}
	}
	for i, t := range s.retired {
		if t.id == id {
			// Hand the rotated file over to its new name, keeping our place.
			f.Close()
			s.retired = slices.Delete(s.retired, i, i+1)
			t.path, t.quiet = path, time.Time{}
			s.tails[path] = t
			return
		}
	}
	start := s.startOffset(f, id, path, fi.Size(), initial)
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		f.Close()
		s.logger.Warn("cannot seek log file", "path", path, "err", err)
		return
	}
	t := &tail{path: path, f: f, id: id, readPos: start, offset: start, acked: start, split: source.NewSplitter(source.MaxLine)}
	s.newStream(t)
	if e := s.state[id]; e != nil && start == e.Offset {
		t.head = e.Head
	}
	s.tails[path] = t
	s.dirty = true // record the file even before its first line
	s.logger.Debug("following", "path", path, "offset", start)
}

// startOffset decides where reading a newly opened file starts.
func (s *Source) startOffset(f *os.File, id fileID, path string, size int64, initial bool) int64 {
	if e := s.state[id]; e != nil {
		if e.Offset <= size && headMatches(f, e.Head) {
			return e.Offset
		}
		// Truncated while we were stopped, or a reused inode: a new file.
		delete(s.state, id)
		return 0
	}
	if !initial {
		return 0 // appeared while running: every line of it is new
	}
	for _, e := range s.state {
		if e.Path == path {
			return 0 // rotated while we were stopped: the new file is all unread
		}
	}
	if s.cfg.FromStart {
		return 0
	}
	return size
}

// follow reads what is new in t and checks whether its path still names
// the same file.
func (s *Source) follow(ctx context.Context, out chan<- source.Line, t *tail, now time.Time) error {
	if err := s.drain(ctx, out, t); err != nil || t.failed {
		return err
	}
	fi, err := t.f.Stat()
	if err == nil && fi.Size() < t.readPos {
		// copytruncate or truncation: everything is new again.
		s.logger.Info("log file truncated; reading it from the start", "path", t.path)
		t.split.Reset()
		t.readPos, t.offset, t.acked, t.head = 0, 0, 0, nil
		s.newStream(t)
		s.dirty = true
		if _, err := t.f.Seek(0, io.SeekStart); err != nil {
			return s.drop(t, err)
		}
		if err := s.drain(ctx, out, t); err != nil {
			return err
		}
	}
	pfi, err := os.Stat(t.path)
	if err != nil {
		// Renamed and not yet recreated, or deleted: keep reading what we
		// have until the path returns or the file has been quiet a while.
		if t.quiet.IsZero() {
			t.quiet = now
		}
		if now.Sub(t.quiet) > s.retireGrace {
			s.finish(ctx, out, t)
			s.forget(t, now)
			delete(s.tails, t.path)
		}
		return ctx.Err()
	}
	t.quiet = time.Time{}
	if id, ok := idOf(pfi); ok && id != t.id && pfi.Mode().IsRegular() {
		// Rotated (or the symlink now points elsewhere): the old file has
		// been read to its end; retire it and read the new one from its start.
		s.logger.Info("log file rotated", "path", t.path)
		delete(s.tails, t.path)
		t.quiet = now
		s.retired = append(s.retired, t)
		s.open(t.path, false)
		if nt := s.tails[t.path]; nt != nil {
			return s.drain(ctx, out, nt)
		}
	}
	return ctx.Err()
}

// drop stops following a file after a read error.
func (s *Source) drop(t *tail, err error) error {
	s.logger.Warn("cannot read log file; will retry", "path", t.path, "err", err)
	s.forget(t, time.Now())
	t.failed = true
	if s.tails[t.path] == t {
		delete(s.tails, t.path)
	}
	return nil
}

// drain reads t to its current end and hands on every complete line.
func (s *Source) drain(ctx context.Context, out chan<- source.Line, t *tail) error {
	origin := "file:" + t.path
	for {
		n, err := t.f.Read(s.buf)
		if n > 0 {
			base := t.readPos
			t.readPos += int64(n)
			ferr := t.split.Feed(s.buf[:n], func(line []byte, truncated bool, end int) error {
				pos := base + int64(end)
				if err := s.send(ctx, out, t, pos, source.Line{Text: string(line), Hint: s.cfg.Hint, Origin: origin, Truncated: truncated}); err != nil {
					return err
				}
				t.offset = pos
				if !s.cfg.Ack {
					t.acked = pos
				}
				return nil
			})
			if ferr != nil {
				return ferr
			}
			s.dirty = true
			if time.Since(s.lastSave) > midDrainSave {
				// A long backlog (FromStart on a big file): keep the
				// offsets current so a crash does not start it over.
				s.applyAcks()
				s.trySave()
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return s.drop(t, err)
		}
	}
}

// finish hands on the last, unterminated line of a file that will not be
// written again (rotated away, or deleted). Its offset is the file's end.
func (s *Source) finish(ctx context.Context, out chan<- source.Line, t *tail) {
	line, truncated, ok := t.split.Flush()
	if !ok {
		return
	}
	if s.send(ctx, out, t, t.readPos, source.Line{Text: string(line), Hint: s.cfg.Hint, Origin: "file:" + t.path, Truncated: truncated}) == nil {
		t.offset = t.readPos
		if !s.cfg.Ack {
			t.acked = t.offset
		}
		s.dirty = true
	}
}

func (s *Source) send(ctx context.Context, out chan<- source.Line, t *tail, end int64, l source.Line) error {
	if s.cfg.Ack {
		l.Acker, l.Pos = s, source.Pos{Stream: t.stream, End: end}
	}
	s.stats.Count(l)
	select {
	case out <- l:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forget closes t for good, keeping its offset in the state: the file
// may come back under another name.
func (s *Source) forget(t *tail, now time.Time) {
	s.record(t, now)
	s.dirty = true
	t.f.Close()
	t.closed = true
	if t.acked >= t.offset {
		delete(s.streams, t.stream)
	}
}

// record updates the persisted entry of t.
func (s *Source) record(t *tail, now time.Time) {
	if !t.closed && len(t.head) < headLen && t.acked > int64(len(t.head)) {
		h := make([]byte, min(int64(headLen), t.acked))
		if n, _ := t.f.ReadAt(h, 0); n == len(h) {
			t.head = h
		}
	}
	s.state[t.id] = &entry{Dev: t.id.Dev, Ino: t.id.Ino, Path: t.path, Offset: t.acked, Head: t.head, Seen: now}
}

// save persists the offsets if anything moved.
func (s *Source) save() error {
	if !s.dirty {
		return nil
	}
	now := time.Now()
	for _, t := range s.tails {
		s.record(t, now)
	}
	for _, t := range s.retired {
		s.record(t, now)
	}
	durable := now.Sub(s.lastSync) >= saveEvery
	if err := saveState(s.stateDir, s.state, now, durable); err != nil {
		return err
	}
	s.dirty, s.lastSave = false, now
	if durable {
		s.lastSync = now
	}
	return nil
}
