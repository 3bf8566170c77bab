package sshd

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/internal/corpus"
)

// TestLoghubOpenSSH replays Loghub's real OpenSSH sample (unlabelled): it
// reports how many lines are recognised and which message shapes are not,
// and requires every hostile event to carry an address.
func TestLoghubOpenSSH(t *testing.T) {
	data, err := os.ReadFile(corpus.Path(t, "loghub", "OpenSSH", "OpenSSH_2k.log"))
	if err != nil {
		t.Skipf("corpus: %v", err)
	}
	p := New(Aggressive, testCtx)
	kinds := map[phalanx.EventKind]int{}
	missed := map[string]int{}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		n++
		var ev phalanx.Event
		if !p.Parse(line, &ev) {
			msg := line
			if i := strings.Index(line, "]: "); i >= 0 {
				msg = line[i+3:]
			}
			w := strings.Fields(msg)
			if len(w) > 3 {
				w = w[:3]
			}
			missed[strings.Join(w, " ")]++
			continue
		}
		kinds[ev.Kind]++
		if ev.Kind.Hostile() && !ev.Source.IsValid() && !strings.Contains(line, "Too many authentication failures") {
			t.Errorf("hostile without address: %s", line)
		}
	}
	rec := 0
	for _, c := range kinds {
		rec += c
	}
	t.Logf("loghub OpenSSH: %d lines, %d recognised (%.1f%%), kinds %v", n, rec, pct(rec, n), kinds)
	var keys []string
	for k := range missed {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return missed[keys[i]] > missed[keys[j]] })
	for _, k := range keys {
		t.Logf("not recognised: %4d × %q", missed[k], k)
	}
	if kinds[phalanx.KindAuthFailed] == 0 || kinds[phalanx.KindInvalidUser] == 0 {
		t.Errorf("no auth failures or invalid users recognised")
	}
}
