package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/phalanx-defence/phalanx/alliance"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/natsbus"
)

// ReasonUndecodable marks a ledger entry that is not an envelope at all:
// nobody signed it, so the fold never sees it.
const ReasonUndecodable = "undecodable"

// ledgerConnectTimeout bounds how long verify and tail try to reach the
// ledger: a person is waiting at a terminal.
const ledgerConnectTimeout = 20 * time.Second

// VerifiedEntry is one ledger entry as an independent replay judged it.
type VerifiedEntry struct {
	Seq      uint64          `json:"seq"`
	Time     time.Time       `json:"time"` // the stream's timestamp
	ID       string          `json:"id,omitempty"`
	Kind     ledger.Kind     `json:"kind,omitempty"`
	Author   ledger.MemberID `json:"author,omitempty"`
	Accepted bool            `json:"accepted"`
	Reason   string          `json:"reason,omitempty"`   // why the fold rejected it
	Tampered bool            `json:"tampered,omitempty"` // the reason says forgery or replay, not policy
	Refused  int             `json:"refused,omitempty"`  // reports of an accepted batch that were not folded (rate limit, territory, ...)
	Summary  string          `json:"summary"`            // one line, attacker text escaped
}

// VerifyReport sums up a replay of the whole ledger.
type VerifyReport struct {
	Alliance string            `json:"alliance"`
	Entries  uint64            `json:"entries"`
	Accepted uint64            `json:"accepted"`
	Rejected map[string]uint64 `json:"rejected,omitempty"` // by reason
	Tampered uint64            `json:"tampered"`
	Authors  int               `json:"authors"` // distinct authors of accepted entries
	First    time.Time         `json:"first,omitzero"`
	Last     time.Time         `json:"last,omitzero"`
	OK       bool              `json:"ok"` // no entry was forged, replayed or out of its author's chain
}

// Tampering reports whether a rejection reason means the ledger holds
// something no member signed in that place: a forged or unverifiable
// signature, a replayed or reordered chain, a foreign alliance's
// envelope, or bytes that are no envelope. Policy refusals (territory,
// rate limit, pact, …) are members' signed words that the charter
// declines, and are not tampering.
func Tampering(reason string) bool {
	switch reason {
	case alliance.ReasonBadSignature, alliance.ReasonReplay, alliance.ReasonOutOfOrder,
		alliance.ReasonWrongAlliance, alliance.ReasonUnknownAuthor, ReasonUndecodable:
		return true
	}
	return false
}

// ledgerReader replays the ledger through a fold of its own, started from
// the genesis on disk: it trusts neither the running member's state nor
// its snapshot, only the charter the member joined.
type ledgerReader struct {
	fold    *alliance.Fold
	authors map[ledger.MemberID]struct{}
	report  VerifyReport
}

func newLedgerReader(genesis ledger.Envelope, log *slog.Logger) (*ledgerReader, error) {
	fold, err := alliance.New(genesis, alliance.Options{Log: log})
	if err != nil {
		return nil, fmt.Errorf("member: ledger: %w", err)
	}
	return &ledgerReader{
		fold:    fold,
		authors: map[ledger.MemberID]struct{}{},
		report:  VerifyReport{Alliance: genesis.ID(), Rejected: map[string]uint64{}},
	}, nil
}

func (r *ledgerReader) judge(msg natsbus.Message) VerifiedEntry {
	e := VerifiedEntry{Seq: msg.Seq, Time: msg.Time.UTC()}
	rep := &r.report
	rep.Entries++
	if rep.First.IsZero() {
		rep.First = e.Time
	}
	rep.Last = e.Time
	rec, err := ledger.DecodeReceived(msg.Data)
	if err != nil {
		e.Reason, e.Tampered = ReasonUndecodable, true
		e.Summary = printable(err.Error())
	} else {
		env := rec.Envelope()
		e.ID, e.Kind, e.Author = rec.ID(), env.Kind, env.Author
		e.Summary = summarize(env)
		out := r.fold.ApplyReceived(rec, msg.Seq, msg.Time)
		e.Accepted, e.Reason, e.Tampered = out.Accepted, out.Reason, !out.Accepted && Tampering(out.Reason)
		e.Refused = out.Refused
	}
	if e.Accepted {
		rep.Accepted++
		r.authors[e.Author] = struct{}{}
		rep.Authors = len(r.authors)
	} else {
		rep.Rejected[e.Reason]++
		if e.Tampered {
			rep.Tampered++
		}
	}
	rep.OK = rep.Tampered == 0
	return e
}

// openLedger connects to the ledger of the member in dir as a client,
// whether or not that member is running, and prepares a fresh replay.
func openLedger(ctx context.Context, dir string, log *slog.Logger) (*natsbus.Bus, *ledgerReader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("member: %w", err)
	}
	cfg, err := loadConfig(abs)
	if err != nil {
		return nil, nil, err
	}
	genesis, err := loadGenesis(abs)
	if err != nil {
		return nil, nil, err
	}
	if genesis.ID() != cfg.Alliance {
		return nil, nil, fmt.Errorf("member: %s is not the charter of alliance %s named in %s", fileGenesis, cfg.Alliance, fileConfig)
	}
	nc := cfg.NATS
	if nc.Embedded {
		// The embedded server exists only while the hub member runs; a
		// client would otherwise wait for it forever, so ask first.
		addr := dialable(nc.Listen)
		if nc.NoListen || addr == "" {
			return nil, nil, fmt.Errorf("member: %s's ledger is in an embedded NATS server that takes no clients: give nats.listen in %s", abs, fileConfig)
		}
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("member: nothing answers on %s (%v): start phalanx up --data %s first, the ledger lives in its embedded NATS server", addr, err, abs)
		}
		conn.Close()
		nc = natsbus.Config{URLs: []string{"nats://" + addr}}
	}
	octx, cancel := context.WithTimeout(ctx, ledgerConnectTimeout)
	defer cancel()
	bus, err := natsbus.Open(octx, nc, cfg.Alliance, log)
	if err != nil {
		return nil, nil, fmt.Errorf("member: ledger: %w (check nats.urls and nats.creds_file in %s)", err, filepath.Join(abs, fileConfig))
	}
	r, err := newLedgerReader(genesis, log)
	if err != nil {
		bus.Close()
		return nil, nil, err
	}
	return bus, r, nil
}

// dialable turns a listen address into one a client can dial: a wildcard
// host means this machine.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// VerifyLedger replays the ledger of the member in dir from its first
// entry to its last through a fold of its own, calling each (when not nil)
// for every entry: every signature is checked against its author's key as
// the ledger knew it at that point, and every author's chain for gaps and
// replays.
func VerifyLedger(ctx context.Context, dir string, log *slog.Logger, each func(VerifiedEntry)) (VerifyReport, error) {
	bus, r, err := openLedger(ctx, dir, log)
	if err != nil {
		return VerifyReport{}, err
	}
	defer bus.Close()
	lctx, cancel := context.WithTimeout(ctx, ledgerConnectTimeout)
	last, err := bus.LastSeq(lctx)
	cancel()
	if err != nil {
		return VerifyReport{}, fmt.Errorf("member: ledger: %w", err)
	}
	if last == 0 {
		return r.report, fmt.Errorf("member: the ledger of alliance %s is empty: the founder publishes the charter when it first runs `phalanx up`", r.report.Alliance)
	}
	err = bus.Consume(ctx, 1, func(m natsbus.Message) error {
		e := r.judge(m)
		if each != nil {
			each(e)
		}
		if m.Seq >= last {
			return errStop
		}
		return nil
	})
	switch {
	case errors.Is(err, errStop):
	case err != nil:
		return r.report, fmt.Errorf("member: ledger: %w", err)
	case ctx.Err() != nil:
		return r.report, fmt.Errorf("member: ledger verification interrupted at entry %d of %d: %w", r.report.Entries, last, ctx.Err())
	}
	return r.report, nil
}

// TailLedger follows the ledger of the member in dir until ctx ends,
// calling each for every entry from stream sequence from on (0: only
// entries that arrive from now on). Entries before from are replayed
// silently, so that each is judged with the keys and chains in force.
func TailLedger(ctx context.Context, dir string, from uint64, log *slog.Logger, each func(VerifiedEntry)) error {
	bus, r, err := openLedger(ctx, dir, log)
	if err != nil {
		return err
	}
	defer bus.Close()
	if from == 0 {
		lctx, cancel := context.WithTimeout(ctx, ledgerConnectTimeout)
		last, err := bus.LastSeq(lctx)
		cancel()
		if err != nil {
			return fmt.Errorf("member: ledger: %w", err)
		}
		from = last + 1
	}
	err = bus.Consume(ctx, 1, func(m natsbus.Message) error {
		if e := r.judge(m); m.Seq >= from {
			each(e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("member: ledger: %w", err)
	}
	return nil
}

func summarizeReport(b ledger.Report) string {
	s := fmt.Sprintf("%s %s %s for %s, %d events", b.Value, printable(string(b.Type)), printable(b.Scenario), b.Duration, b.Events)
	if b.Reason != "" {
		s += ": " + strconv.Quote(clip(b.Reason))
	}
	return s
}

// summarize is one line about an envelope for a person. Every string in a
// body is its author's to choose, hence printable.
func summarize(env ledger.Envelope) string {
	bad := func(err error) string { return "undecodable body: " + printable(err.Error()) }
	switch env.Kind {
	case ledger.KindReport, ledger.KindManual:
		b, err := ledger.DecodeBody[ledger.Report](env)
		if err != nil {
			return bad(err)
		}
		return summarizeReport(b)
	case ledger.KindReports:
		b, err := ledger.DecodeBody[ledger.Reports](env)
		if err != nil {
			return bad(err)
		}
		each := make([]string, len(b.Reports))
		for i, r := range b.Reports {
			each[i] = summarizeReport(r)
		}
		return fmt.Sprintf("%d reports: %s", len(b.Reports), strings.Join(each, "; "))
	case ledger.KindSighting:
		b, err := ledger.DecodeBody[ledger.Sighting](env)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("%s %s, %d events", b.Source, printable(b.Scenario), b.Events)
	case ledger.KindLift:
		b, err := ledger.DecodeBody[ledger.Lift](env)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("lift %s: %s", b.Value, strconv.Quote(clip(b.Reason)))
	case ledger.KindCeasefire:
		b, err := ledger.DecodeBody[ledger.Ceasefire](env)
		if err != nil {
			return bad(err)
		}
		scope := "everything"
		if b.Scope.IsValid() {
			scope = b.Scope.String()
		}
		if b.Scenario != "" {
			scope += " " + printable(b.Scenario)
		}
		return fmt.Sprintf("ceasefire %s over %s until %s: %s", printable(b.ID), scope, b.Until.UTC().Format(time.RFC3339), strconv.Quote(clip(b.Reason)))
	case ledger.KindCeasefireEnd:
		b, err := ledger.DecodeBody[ledger.CeasefireEnd](env)
		if err != nil {
			return bad(err)
		}
		return "end ceasefire " + printable(b.ID)
	case ledger.KindAdmission:
		b, err := ledger.DecodeBody[ledger.Admission](env)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("admits %s as %s", printable(b.Name), printable(string(b.Role)))
	case ledger.KindDrill:
		b, err := ledger.DecodeBody[ledger.Drill](env)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("drill %s from %s", printable(b.ID), b.Value)
	case ledger.KindDrillAck:
		b, err := ledger.DecodeBody[ledger.DrillAck](env)
		if err != nil {
			return bad(err)
		}
		return "ack drill " + printable(b.DrillID)
	case ledger.KindHeartbeat:
		b, err := ledger.DecodeBody[ledger.Heartbeat](env)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("applied %d", b.Applied)
	case ledger.KindExpel:
		b, err := ledger.DecodeBody[ledger.Expel](env)
		if err != nil {
			return bad(err)
		}
		return fmt.Sprintf("expel %s: %s", printable(string(b.Member)), strconv.Quote(clip(b.Reason)))
	case ledger.KindKeyRotation:
		return "new key"
	case ledger.KindCharter:
		b, err := ledger.DecodeBody[charter.Charter](env)
		if err != nil {
			return bad(err)
		}
		return "charter " + strconv.Quote(clip(b.Name))
	}
	return "unknown kind " + printable(string(env.Kind))
}

// maxSummaryText bounds each piece of attacker text in a summary.
const maxSummaryText = 80

func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxSummaryText {
		return s
	}
	r := []rune(s)
	return string(r[:maxSummaryText]) + "…"
}

// printable shows s as is when a terminal cannot misread it, else quoted:
// control characters (escape sequences), invisible format characters
// (bidi overrides) and invalid UTF-8 are never passed through.
func printable(s string) string {
	s = clip(s)
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) || r == utf8.RuneError
	}) < 0 {
		return s
	}
	return strconv.Quote(s)
}
