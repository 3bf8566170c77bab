package mail

import (
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/internal/corpus"
	"github.com/phalanx-defence/phalanx/parse/logline"
)

type f2bCase = corpus.Fail2banCase

// TestFail2banCorpus measures agreement with fail2ban's own postfix and
// dovecot test logs, each case under the modes fail2ban tests it in that
// phalanx has: the default ({}) as Normal and "aggressive" as Aggressive.
func TestFail2banCorpus(t *testing.T) {

	// The harness's zone and "now" (see the corpus README).
	zurich, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		zurich = time.FixedZone("CET", 3600)
	}
	ctx := &logline.Context{Loc: zurich, Now: func() time.Time { return time.Date(2005, 8, 14, 12, 0, 0, 0, zurich) }}

	var total, agree, timeChecked, timeOK int
	for _, c := range corpus.Fail2banCases(t, "postfix", "dovecot") {
		for _, opt := range c.Options {
			var mode Mode
			switch {
			case len(opt) == 0:
				mode = Normal
			case len(opt) == 1 && opt["mode"] == "aggressive":
				mode = Aggressive
			default:
				continue
			}
			p := New(ctx)
			p.SetMode(mode)
			var ev phalanx.Event
			ok := p.Parse(c.Line, &ev)
			got := ok && ev.Hostile()
			total++
			switch {
			case got != c.Match:
				t.Logf("disagree %s mode=%d: want match=%v, got ok=%v kind=%q src=%v\n\t%s", c.ID, mode, c.Match, ok, ev.Kind, ev.Source, c.Line)
			case got && c.Host != nil && ev.Source.String() != *c.Host:
				t.Errorf("wrong source %s: want %s, got %v\n\t%s", c.ID, *c.Host, ev.Source, c.Line)
			default:
				agree++
			}
			if got && c.Match && c.Time != nil {
				timeChecked++
				// fail2ban compares whole seconds; one annotation
				// writes "2005-03-7".
				want, err := time.ParseInLocation("2006-1-2T15:04:05", *c.Time, zurich)
				if err == nil && ev.Time.Truncate(time.Second).Equal(want) {
					timeOK++
				} else {
					t.Errorf("time %s: want %s, got %s", c.ID, *c.Time, ev.Time)
				}
			}
		}
	}
	if total == 0 {
		t.Fatal("corpus: no postfix or dovecot cases")
	}
	pct := 100 * float64(agree) / float64(total)
	t.Logf("postfix+dovecot: %d/%d (case, mode) pairs agree (%.1f%%); times %d/%d", agree, total, pct, timeOK, timeChecked)
	if pct < 97 {
		t.Errorf("agreement %.1f%% < 97%%", pct)
	}
}
