// Package crowdsec imports from CrowdSec: its decisions, as `cscli
// decisions list -o json` prints them or as the bouncer API streams them
// (DecodeDecisions), and its hub scenarios of the leaky and trigger types
// (TranslateScenarios), which become phalanx detect scenarios.
package crowdsec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/migrate"
)

// MaxDecisionsFile bounds what DecodeDecisions reads: a full CrowdSec
// community blocklist export is some tens of megabytes.
const MaxDecisionsFile = 512 << 20

// maxScenario bounds a scenario name taken from the input (the alliance
// refuses longer ones).
const maxScenario = 128

// Formats DecodeDecisions recognises.
const (
	FormatAlerts    = "cscli-alerts"   // `cscli decisions list -o json`: alerts, each with its decisions
	FormatDecisions = "decisions"      // GET /v1/decisions: a plain array of decisions
	FormatStream    = "bouncer-stream" // GET /v1/decisions/stream: {"new": [...], "deleted": [...]}
	FormatEmpty     = "empty"          // null or [] (what cscli prints when there is nothing)
)

// Decisions is what DecodeDecisions found.
type Decisions struct {
	Format   string             `json:"format"`
	Read     int                `json:"read"`   // decisions in the input
	Imported []phalanx.Decision `json:"-"`      // one per value, in force at the time given
	Merged   int                `json:"merged"` // duplicates of a value folded into one
	Skipped  migrate.Skips      `json:"skipped"`
}

// alert is one element of cscli's output; only what the import uses.
type alert struct {
	Scenario    string            `json:"scenario"`
	EventsCount int               `json:"events_count"`
	StartAt     string            `json:"start_at"`
	Decisions   []json.RawMessage `json:"decisions"`
}

// decision is a CrowdSec decision as both cscli and the LAPI write it.
type decision struct {
	ID        int64  `json:"id"`
	Origin    string `json:"origin"`
	Scenario  string `json:"scenario"`
	Scope     string `json:"scope"`
	Type      string `json:"type"`
	Value     string `json:"value"`
	Duration  string `json:"duration"`
	Until     string `json:"until"`
	Simulated bool   `json:"simulated"`
}

// DecodeDecisions reads CrowdSec decisions in any of the formats above
// (it tells them apart by their shape) and returns those still in force
// at now, each as a phalanx decision with origin import:crowdsec whose
// Until is the CrowdSec decision's. What it leaves out is counted by
// reason: expired, simulated, deleted, a scope phalanx does not enforce
// (Country, AS, Username…), a type it does not know, a value that is no
// address or range. An error means the input is not JSON of these shapes
// at all; it names the line.
func DecodeDecisions(r io.Reader, now time.Time) (*Decisions, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDecisionsFile+1))
	if err != nil {
		return nil, fmt.Errorf("crowdsec: read decisions: %w", err)
	}
	if len(data) > MaxDecisionsFile {
		return nil, fmt.Errorf("crowdsec: decisions file larger than %d MiB: split it (cscli decisions list --limit)", MaxDecisionsFile>>20)
	}
	d := &decoder{data: data, now: now, out: &Decisions{}, byValue: map[netip.Prefix]int{}}
	if err := d.decode(); err != nil {
		return nil, err
	}
	return d.out, nil
}

type decoder struct {
	data    []byte
	now     time.Time
	out     *Decisions
	byValue map[netip.Prefix]int // value → index in out.Imported
	lineOff int64                // lineAt's position: lines newlines before it
	lines   int
}

// lineAt is the 1-based line of a byte offset. Offsets mostly grow, so
// it counts on from the last one asked for: counting from the start each
// time made a large file quadratic.
func (d *decoder) lineAt(off int64) int {
	off = min(max(off, 0), int64(len(d.data)))
	if off < d.lineOff {
		d.lineOff, d.lines = 0, 0
	}
	d.lines += bytes.Count(d.data[d.lineOff:off], []byte("\n"))
	d.lineOff = off
	return 1 + d.lines
}

// syntaxError names the line of a JSON error.
func (d *decoder) syntaxError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("crowdsec: line %d: %v (is this the output of `cscli decisions list -o json` or of /v1/decisions/stream?)", d.lineAt(se.Offset), se)
	case errors.As(err, &te):
		return fmt.Errorf("crowdsec: line %d: %s is a JSON %s, want %s", d.lineAt(te.Offset), fieldName(te.Field), te.Value, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("crowdsec: the JSON ends too early (truncated file?)")
	}
	return fmt.Errorf("crowdsec: %w", err)
}

func fieldName(f string) string {
	if f == "" {
		return "the value"
	}
	return "field " + f
}

func (d *decoder) decode() error {
	trimmed := bytes.TrimSpace(d.data)
	switch {
	case len(trimmed) == 0:
		return errors.New("crowdsec: the decisions file is empty: export with `cscli decisions list -o json > decisions.json`")
	case bytes.Equal(trimmed, []byte("null")):
		d.out.Format = FormatEmpty
		return nil
	case trimmed[0] == '{':
		return d.stream()
	case trimmed[0] == '[':
		return d.array()
	}
	return fmt.Errorf("crowdsec: line %d: want a JSON array (cscli decisions list -o json) or object (/v1/decisions/stream), found %q",
		d.lineAt(int64(bytes.Index(d.data, trimmed[:1]))), firstRune(trimmed))
}

func firstRune(b []byte) string {
	r := []rune(string(b[:min(len(b), 8)]))
	if len(r) == 0 {
		return ""
	}
	return string(r[0])
}

// elements decodes the array that starts at the decoder's position, one
// raw element at a time, with the line each starts on.
func (d *decoder) elements(dec *json.Decoder, each func(raw json.RawMessage, line, i int) error) error {
	tok, err := dec.Token()
	if err != nil {
		return d.syntaxError(err)
	}
	if tok == nil { // null
		return nil
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '[' {
		return fmt.Errorf("crowdsec: line %d: want an array, found %v", d.lineAt(dec.InputOffset()), tok)
	}
	for i := 1; dec.More(); i++ {
		off := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return d.syntaxError(err)
		}
		// InputOffset is where the previous token ended: skip the comma
		// and blanks to the element's own line.
		start := off
		for start < int64(len(d.data)) && (d.data[start] == ',' || unicode.IsSpace(rune(d.data[start]))) {
			start++
		}
		if err := each(raw, d.lineAt(start), i); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return d.syntaxError(err)
	}
	return nil
}

func (d *decoder) array() error {
	dec := json.NewDecoder(bytes.NewReader(d.data))
	format := ""
	err := d.elements(dec, func(raw json.RawMessage, line, i int) error {
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(raw, &probe); err != nil {
			d.out.Skipped.Add(fmt.Sprintf("line %d (item %d)", line, i), string(raw), "not an object: "+err.Error())
			return nil
		}
		_, isAlert := probe["decisions"]
		if _, hasValue := probe["value"]; hasValue && !isAlert {
			if format == "" {
				format = FormatDecisions
			}
			d.one(raw, fmt.Sprintf("line %d (decision %d)", line, i), nil)
			return nil
		}
		if format == "" {
			format = FormatAlerts
		}
		var a alert
		if err := json.Unmarshal(raw, &a); err != nil {
			d.out.Skipped.Add(fmt.Sprintf("line %d (alert %d)", line, i), "", "unreadable alert: "+err.Error())
			return nil
		}
		for j, dr := range a.Decisions {
			d.one(dr, fmt.Sprintf("line %d (alert %d, decision %d)", line, i, j+1), &a)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if format == "" {
		format = FormatEmpty
	}
	d.out.Format = format
	return nil
}

func (d *decoder) stream() error {
	dec := json.NewDecoder(bytes.NewReader(d.data))
	if _, err := dec.Token(); err != nil { // '{'
		return d.syntaxError(err)
	}
	d.out.Format = FormatStream
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return d.syntaxError(err)
		}
		key, _ := tok.(string)
		switch key {
		case "new", "deleted":
			seen = true
			deleted := key == "deleted"
			err = d.elements(dec, func(raw json.RawMessage, line, i int) error {
				where := fmt.Sprintf("line %d (%s %d)", line, key, i)
				if deleted {
					d.out.Read++
					var x decision
					json.Unmarshal(raw, &x) // only to name the value in the report
					d.out.Skipped.Add(where, x.Value, migrate.ReasonDeleted)
					return nil
				}
				d.one(raw, where, nil)
				return nil
			})
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
			if err != nil {
				err = d.syntaxError(err)
			}
		}
		if err != nil {
			return err
		}
	}
	if !seen {
		return errors.New(`crowdsec: a JSON object without "new" or "deleted": want the output of /v1/decisions/stream, or an array from cscli decisions list -o json`)
	}
	if _, err := dec.Token(); err != nil {
		return d.syntaxError(err)
	}
	return nil
}

// one converts one CrowdSec decision, or records why it cannot.
func (d *decoder) one(raw json.RawMessage, where string, a *alert) {
	d.out.Read++
	var x decision
	if err := json.Unmarshal(raw, &x); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			d.out.Skipped.Add(where, "", fmt.Sprintf("%s: %s is a JSON %s, want %s", migrate.ReasonInvalidValue, fieldName(te.Field), te.Value, te.Type))
		} else {
			d.out.Skipped.Add(where, "", "not a decision object: "+err.Error())
		}
		return
	}
	if x.Simulated {
		d.out.Skipped.Add(where, x.Value, migrate.ReasonSimulated)
		return
	}
	var p netip.Prefix
	switch strings.ToLower(x.Scope) {
	case "ip", "":
		addr, err := netip.ParseAddr(strings.TrimSpace(x.Value))
		if err != nil {
			d.out.Skipped.Add(where, x.Value, migrate.ReasonInvalidValue+": not an IP address")
			return
		}
		addr = addr.Unmap().WithZone("")
		p = netip.PrefixFrom(addr, addr.BitLen())
	case "range":
		var err error
		p, err = netip.ParsePrefix(strings.TrimSpace(x.Value))
		if err != nil {
			d.out.Skipped.Add(where, x.Value, migrate.ReasonInvalidValue+": not a CIDR range")
			return
		}
		p = phalanx.NormalizePrefix(p)
	default:
		d.out.Skipped.Add(where, x.Scope+":"+x.Value, migrate.ReasonUnsupportedScope+" "+safeText(x.Scope))
		return
	}
	typ, err := phalanx.ParseDecisionType(strings.ToLower(x.Type))
	if err != nil {
		d.out.Skipped.Add(where, x.Value, migrate.ReasonUnsupportedType+" "+safeText(x.Type))
		return
	}
	until, ok := d.until(x)
	if !ok {
		d.out.Skipped.Add(where, x.Value, migrate.ReasonInvalidDuration)
		return
	}
	if !until.After(d.now) {
		d.out.Skipped.Add(where, x.Value, migrate.ReasonExpired)
		return
	}
	scenario := x.Scenario
	events := 1
	first := d.now
	if a != nil {
		if scenario == "" {
			scenario = a.Scenario
		}
		if a.EventsCount > 0 {
			events = a.EventsCount
		}
		if t, err := time.Parse(time.RFC3339Nano, a.StartAt); err == nil && t.Before(d.now) {
			first = t.UTC()
		}
	}
	scenario = safeText(scenario)
	if scenario == "" {
		scenario = "crowdsec"
	}
	dec := phalanx.Decision{
		Value: p, Type: typ, Scenario: scenario, FirstSeen: first, LastSeen: d.now,
		Duration: until.Sub(d.now), Events: events, Origin: migrate.OriginCrowdSec,
		Evidence: []string{fmt.Sprintf("CrowdSec decision %d (origin %s, %s)", x.ID, safeText(x.Origin), where)},
	}
	if i, dup := d.byValue[p]; dup {
		d.out.Merged++
		d.out.Imported[i] = stronger(d.out.Imported[i], dec)
		return
	}
	d.byValue[p] = len(d.out.Imported)
	d.out.Imported = append(d.out.Imported, dec)
}

// until is when the decision ends: its until field when it has one (it
// does not age with the file), else its duration from now.
func (d *decoder) until(x decision) (time.Time, bool) {
	if x.Until != "" {
		if t, err := time.Parse(time.RFC3339Nano, x.Until); err == nil {
			return t.UTC(), true
		}
	}
	if x.Duration == "" {
		return time.Time{}, false
	}
	dur, err := time.ParseDuration(x.Duration)
	if err != nil {
		return time.Time{}, false
	}
	return d.now.Add(dur), true
}

// stronger keeps the stronger type, then the later end: what the decision
// set would do with both.
func stronger(a, b phalanx.Decision) phalanx.Decision {
	rank := map[phalanx.DecisionType]int{phalanx.Throttle: 1, phalanx.Captcha: 2, phalanx.Ban: 3}
	if rank[b.Type] > rank[a.Type] || (rank[b.Type] == rank[a.Type] && b.Until().After(a.Until())) {
		b.Events = max(a.Events, b.Events)
		return b
	}
	return a
}

// safeText keeps a name from the input printable and short: it ends up in
// terminals and in the ledger.
func safeText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > maxScenario {
		s = strings.ToValidUTF8(s[:maxScenario], "")
	}
	return s
}
