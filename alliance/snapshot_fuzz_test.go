package alliance

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/ledger"
)

// FuzzRestore: a member restores its fold from fold.snap in its data
// directory; a torn write, a full disk or a hand edit can leave anything
// there. Restore must refuse what it cannot use (the member then folds the
// ledger from the start) and never panic, and a fold it accepts must keep
// folding and snapshot to what it restored from.
func FuzzRestore(f *testing.F) {
	h := newHarness(f)
	f.Add(mustSnapshot(f, h.f))
	h.send("a", ledger.KindReport, rep("198.51.100.1", "ssh-exploit"))
	h.send("b", ledger.KindReport, rep("198.51.100.2", "ssh-bf"))
	h.send("b", ledger.KindReport, rep("2001:db8::/48", "ssh-bf"))
	h.send("c", ledger.KindSighting, ledger.Sighting{Source: mustValue("192.0.2.9").Addr(), Scenario: "ssh-bf", Events: 3, Since: t0})
	h.send("a", ledger.KindCeasefire, ledger.Ceasefire{ID: "cf1", Until: t0.Add(time.Hour), Reason: "fp"})
	h.send("x", ledger.KindReport, rep("198.51.100.3", "ssh-bf")) // an outsider: rejected, counted
	snap := mustSnapshot(f, h.f)
	f.Add(snap)
	f.Add(bytes.Replace(snap, []byte(`"version":`), []byte(`"version":9`), 1))
	f.Add(bytes.Replace(snap, []byte(`"value":"198.51.100.1"`), []byte(`"value":"::ffff:1.2.3.4/200"`), 1))
	f.Add(bytes.Replace(snap, []byte(`"decisions":[`), []byte(`"decisions":[{},`), 1))
	f.Add(bytes.Replace(snap, []byte(`"members":[`), []byte(`"members":[{},`), 1))
	f.Add(snap[:len(snap)/2])
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`null`))
	genesis := h.genesis
	f.Fuzz(func(t *testing.T, b []byte) {
		fold, err := Restore(genesis, b, Options{})
		if err != nil {
			return
		}
		first, err := fold.Snapshot()
		if err != nil {
			return // accepted but not representable: the member snapshots again later and logs it
		}
		again, err := Restore(genesis, first, Options{})
		if err != nil {
			t.Fatalf("a snapshot of a restored fold does not restore: %v\n%s", err, first)
		}
		second, err := again.Snapshot()
		if err != nil || !bytes.Equal(first, second) {
			t.Fatalf("snapshot → restore → snapshot changed it (%v):\n%s\n%s", err, first, second)
		}
		// It keeps folding: lookups and further envelopes must not panic.
		at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		_ = fold.Decisions(at)
		for _, d := range fold.Decisions(t0) {
			fold.Lookup(d.Value.Addr(), t0)
		}
		fold.Apply(genesis, fold.Applied()+1, at)
	})
}

func mustSnapshot(tb testing.TB, f *Fold) []byte {
	tb.Helper()
	b, err := f.Snapshot()
	if err != nil {
		tb.Fatal(fmt.Errorf("snapshot: %w", err))
	}
	return b
}
