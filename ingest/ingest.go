// Package ingest is the detection pipeline that `phalanx replay`, `phalanx
// parse` and `phalanx up` share: lines in, typed events through the
// parsers, events through the scenarios, decisions out. It owns no
// goroutines: the caller feeds it from one goroutine, which is what keeps
// the hot path free of locks.
package ingest

import (
	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/parse"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/source"
)

// Stats counts what went through a pipeline.
type Stats struct {
	Lines      int64 // lines seen
	Recognised int64 // lines a parser recognised
	Hostile    int64 // events that count toward a scenario
	Decisions  int64 // decisions taken
	Bytes      int64
}

// Pipeline parses lines and feeds the hostile ones to the scenarios.
type Pipeline struct {
	parser *parse.Parser
	engine *detect.Engine
	emit   func(phalanx.Decision)

	ev    phalanx.Event
	decs  []phalanx.Decision
	stats Stats
}

// New returns a pipeline; emit is called, on the feeding goroutine, for
// every decision the scenarios take. engine may be nil to parse only.
func New(parser *parse.Parser, engine *detect.Engine, emit func(phalanx.Decision)) *Pipeline {
	return &Pipeline{parser: parser, engine: engine, emit: emit}
}

// Line processes one raw line and returns the event it parsed to (valid
// until the next call) and whether a parser recognised it.
func (p *Pipeline) Line(line string) (*phalanx.Event, bool) {
	p.stats.Lines++
	p.stats.Bytes += int64(len(line)) + 1
	ok := p.parser.Parse(line, &p.ev)
	p.observe(ok, line)
	return &p.ev, ok
}

// Record processes a record whose header a structured source has split
// (journald, syslog); raw is the evidence kept with a decision.
func (p *Pipeline) Record(h *logline.Header, raw string) (*phalanx.Event, bool) {
	p.stats.Lines++
	p.stats.Bytes += int64(len(raw)) + 1
	ok := p.parser.ParseHeader(h, &p.ev)
	p.observe(ok, raw)
	return &p.ev, ok
}

// SourceLine processes a line from a live source: a raw line as Line
// does, a structured one (journald, parsed syslog) with the header it came
// with, timed by clock when the source gave no time (the clock is read
// only then: not on the raw lines of the hot path).
func (p *Pipeline) SourceLine(l source.Line, clock phalanx.Clock) (*phalanx.Event, bool) {
	if !l.Structured() {
		return p.Line(l.Text)
	}
	h := logline.Header{Time: l.Time, Host: l.Host, Program: l.Program, PID: l.PID, Message: l.Text}
	if h.Time.IsZero() {
		h.Time = clock.Now()
	}
	return p.Record(&h, l.Text)
}

func (p *Pipeline) observe(ok bool, line string) {
	if !ok {
		return
	}
	p.stats.Recognised++
	if !p.ev.Hostile() && p.ev.Kind != phalanx.KindAuthSuccess {
		return
	}
	if p.ev.Hostile() {
		p.stats.Hostile++
	}
	if p.engine == nil || !p.ev.Source.IsValid() {
		return
	}
	// Successful logins go to the engine too: they calm a source's buckets.
	p.decs = p.engine.Observe(&p.ev, line, p.decs[:0])
	for _, d := range p.decs {
		p.stats.Decisions++
		if p.emit != nil {
			p.emit(d)
		}
	}
}

// Stats returns the counts so far.
func (p *Pipeline) Stats() Stats { return p.stats }
