package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// A progress line on standard error for long replays: only when standard
// error is a terminal and the input files are large, so that tests, pipes
// and log collectors never see it.
var (
	// progressMin is the total input size from which the line is shown.
	progressMin int64 = 50e6
	// progressEvery is the least time between two updates.
	progressEvery = 100 * time.Millisecond
	// isTerminal reports whether w is a terminal; tests replace it.
	isTerminal = func(w io.Writer) bool {
		f, ok := w.(*os.File)
		return ok && term.IsTerminal(int(f.Fd()))
	}
)

// progress counts the bytes read from the input files and the lines
// scanned, and redraws one line on a terminal. A nil *progress does
// nothing, so callers need not check.
type progress struct {
	w      io.Writer
	total  int64 // bytes, of the files on disk (compressed for .gz)
	read   int64
	lines  int64
	start  time.Time
	last   time.Time
	now    func() time.Time
	shown  bool
	closed bool
}

// newProgress returns a progress line for files on stderr, or nil when
// stderr is not a terminal or the files are smaller than progressMin in
// total (standard input, "-", has no size and does not count).
func newProgress(stderr io.Writer, files []string) *progress {
	if !isTerminal(stderr) {
		return nil
	}
	var total int64
	for _, name := range files {
		if name == "-" {
			continue
		}
		if fi, err := os.Stat(name); err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
	}
	if total < progressMin || total == 0 {
		return nil
	}
	now := time.Now
	t := now()
	return &progress{w: stderr, total: total, start: t, last: t, now: now}
}

// open is openInput counting the bytes read from the file (before
// decompression, to compare with the size on disk).
func (p *progress) open(path string, stdin io.Reader) (io.ReadCloser, error) {
	if p == nil {
		return openInput(path, stdin)
	}
	return openInputCounted(path, stdin, func(r io.Reader) io.Reader { return &countingReader{r: r, p: p} })
}

// line counts one scanned line.
func (p *progress) line() {
	if p != nil {
		p.lines++
	}
}

// add counts n bytes read and redraws the line at most every
// progressEvery.
func (p *progress) add(n int) {
	p.read += int64(n)
	if p.closed {
		return
	}
	t := p.now()
	if t.Sub(p.last) < progressEvery {
		return
	}
	p.last = t
	fmt.Fprintf(p.w, "\r%s\x1b[K", formatProgress(p.read, p.total, p.lines, t.Sub(p.start)))
	p.shown = true
}

// done clears the line; later calls do nothing.
func (p *progress) done() {
	if p == nil || p.closed {
		return
	}
	p.closed = true
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.p.add(n)
	}
	return n, err
}

// formatProgress is the progress line: bytes read of total, percentage,
// lines a second and the time left at the rate so far.
func formatProgress(read, total, lines int64, elapsed time.Duration) string {
	pct := 0.0
	if total > 0 {
		pct = min(100, 100*float64(read)/float64(total))
	}
	rate, eta := "- lines/s", "ETA -"
	if secs := elapsed.Seconds(); secs > 0 {
		rate = fmt.Sprintf("%.0f lines/s", float64(lines)/secs)
		if read > 0 && read < total {
			left := time.Duration(float64(elapsed) * float64(total-read) / float64(read))
			eta = "ETA " + formatETA(left)
		} else if read >= total {
			eta = "ETA 0s"
		}
	}
	return fmt.Sprintf("%s / %s (%.0f%%)  %s  %s", formatBytes(read), formatBytes(total), pct, rate, eta)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func formatETA(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	if d >= time.Minute {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
