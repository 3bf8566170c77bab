// Package source defines what every live log source produces: a Line, plus
// the counters each source keeps and the bounded line splitter that the
// byte-stream sources (files, standard input) share.
//
// The sources themselves live in sub-packages: source/file follows files
// across rotation and restarts, source/journald follows journalctl,
// source/syslog receives RFC 3164/5424 messages over UDP and TCP, and
// source/reader reads any io.Reader (standard input) to its end. Each has
// the same lifecycle: New (validates the configuration, may bind or load
// state) → Run(ctx, out) (returns nil when ctx ends) → Close.
package source

import (
	"sync/atomic"
	"time"
)

// MaxLine is the longest line, in bytes, that a source hands on. Longer
// lines are cut to MaxLine bytes, marked Truncated and counted: an attacker
// who controls what gets logged must not control how much memory we use.
const MaxLine = 1 << 20

// Line is one log record from a source.
type Line struct {
	Text    string    // the raw line (files, stdin, raw syslog) or the message (journald, parsed syslog)
	Time    time.Time // set when the source knows it (journald __REALTIME_TIMESTAMP, syslog header); zero for raw lines
	Host    string    // structured sources only
	Program string    // structured sources only (journald SYSLOG_IDENTIFIER or _COMM, syslog APP-NAME/tag)
	PID     int       // structured sources only
	Hint    string    // parser hint from the source's config ("sshd", "nginx", ... or "" = auto-detect)
	Origin  string    // e.g. "file:/var/log/auth.log", "journald", "syslog+udp:127.0.0.1:5514" — for metrics and evidence

	// Truncated is set when the record was longer than MaxLine and Text
	// holds only its first MaxLine bytes.
	Truncated bool

	// Acker and Pos are set by sources that resume where their consumer
	// stopped (source/file with Config.Ack, source/journald with a state
	// directory): a consumer hands Pos back to Acker once the line is fully
	// processed, and only acknowledged positions are saved (a file's offset,
	// journald's cursor; journald's Pos.End numbers its lines rather than
	// bytes). Nil for sources without a position to save.
	Acker Acker
	Pos   Pos
}

// Pos is where a line ends in its source: Stream names one open file (a
// new one after a truncation), End the offset just past the line.
type Pos struct {
	Stream uint32
	End    int64
}

// Acker takes back the positions of lines the consumer has fully
// processed. Ack is called from the consumer's goroutine, with positions
// of one stream in the order its lines were received; it must not block.
type Acker interface {
	Ack(Pos)
}

// Acks batches acknowledgements on the consumer's side so that the hot
// path costs a comparison per line, not a call into the source: lines of
// one stream arrive in order, so only the last position of each stream
// needs to be handed back. The zero value is ready to use; it is not safe
// for concurrent use.
type Acks struct {
	pend []pending
}

type pending struct {
	a Acker
	p Pos
}

// Add records that l has been fully processed.
func (b *Acks) Add(l Line) {
	if l.Acker == nil {
		return
	}
	for i := range b.pend {
		if b.pend[i].p.Stream == l.Pos.Stream && b.pend[i].a == l.Acker {
			b.pend[i].p = l.Pos
			return
		}
	}
	b.pend = append(b.pend, pending{l.Acker, l.Pos})
}

// Empty reports whether nothing waits to be acknowledged.
func (b *Acks) Empty() bool { return len(b.pend) == 0 }

// Take moves what was added so far into a batch of its own, for a consumer
// that must hold it back until some later event (a report published).
func (b *Acks) Take() Acks {
	out := Acks{pend: b.pend}
	b.pend = nil
	return out
}

// Flush hands every recorded position back to its source.
func (b *Acks) Flush() {
	for _, e := range b.pend {
		e.a.Ack(e.p)
	}
	b.pend = b.pend[:0]
}

// Structured reports whether Program/Host/PID/Time came from the source
// rather than from the text. Raw lines (files, stdin, unparsable syslog)
// carry none of them, so a parser must split the text's own header.
func (l Line) Structured() bool {
	return !l.Time.IsZero() || l.Program != "" || l.Host != "" || l.PID != 0
}

// Stats counts what a source read. The counters are safe for concurrent
// use; a metrics exporter reads them while the source runs.
//
// A line is counted when it has been read, just before it is handed to the
// output channel, so that a consumer that has received a line also sees it
// counted.
type Stats struct {
	Lines     atomic.Uint64 // lines read
	Truncated atomic.Uint64 // of those, lines cut to MaxLine
	Dropped   atomic.Uint64 // records that could not be decoded or framed and were not handed on
}

// Count counts l as read.
func (s *Stats) Count(l Line) {
	s.Lines.Add(1)
	if l.Truncated {
		s.Truncated.Add(1)
	}
}
