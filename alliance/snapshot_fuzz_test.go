package alliance

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/internal/fuzzmin"
	"github.com/phalanx-defence/phalanx/ledger"
)

// TestMain caps fuzz minimization at 2 s (internal/fuzzmin): a snapshot is
// a few kilobytes, so with Go's 60 s one new input of FuzzRestore took the
// whole minute.
func TestMain(m *testing.M) { fuzzmin.Main(m, "2s") }

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
	h.send("c", ledger.KindReport, rep("2001:db8:1::/48", "ssh-exploit"))
	h.send("c", ledger.KindSighting, ledger.Sighting{Source: mustValue("192.0.2.9").Addr(), Scenario: "ssh-bf", Events: 3, Since: t0})
	h.send("a", ledger.KindCeasefire, ledger.Ceasefire{ID: "cf1", Until: t0.Add(time.Hour), Reason: "fp"})
	h.send("x", ledger.KindReport, rep("198.51.100.3", "ssh-bf")) // an outsider: rejected, counted
	snap := mustSnapshot(f, h.f)
	f.Add(snap)
	f.Add(bytes.Replace(snap, []byte(`"version":`), []byte(`"version":9`), 1))
	f.Add(bytes.Replace(snap, []byte(`"members":[`), []byte(`"members":[{},`), 1))
	f.Add(snap[:len(snap)/2])
	f.Add(snap[:len(snap)-3])
	for _, b := range badDecisions(f, h) {
		f.Add(b)
	}
	f.Add([]byte(`{"version":3}`))
	f.Add([]byte("{\"version\":3}\n\x00"))
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

// badDecisions are snapshots of h's fold whose decisions Restore must
// refuse.
func badDecisions(tb testing.TB, h *harness) map[string][]byte {
	tb.Helper()
	head, _, _ := bytes.Cut(mustSnapshot(tb, h.f), []byte{'\n'})
	ds := h.f.Decisions(t0)
	if len(ds) < 2 {
		tb.Fatalf("the harness holds %d decisions, the cases need 2", len(ds))
	}
	with := func(ds ...Decision) []byte {
		b := append(bytes.Clone(head), '\n')
		b = binary.AppendUvarint(b, uint64(len(ds)))
		for _, d := range ds {
			b = appendDecision(b, &d)
		}
		return b
	}
	mapped := ds[0]
	mapped.Value = netip.MustParsePrefix("::ffff:198.51.100.1/128")
	unmasked := ds[0]
	unmasked.Value = netip.MustParsePrefix("198.51.100.1/24")
	badBits := with(ds[0])
	badBits[len(head)+1+1+1+4] = 200 // after the line, the count, the family and the address
	badNanos := ds[0]
	badNanos.LastSeen = time.Unix(1, 0)
	nanos := with(badNanos)
	return map[string][]byte{
		"repeated":          with(ds[0], ds[0]),
		"out of order":      with(ds[1], ds[0]),
		"IPv4-mapped value": with(mapped),
		"host bits set":     with(unmasked),
		"prefix length 200": badBits,
		"nanoseconds ≥ 1e9": bytes.Replace(nanos, []byte{2, 0}, []byte{2, 0xff, 0xff, 0xff, 0xff, 0x0f}, 1),
		"a count it lacks":  append(append(bytes.Clone(head), '\n'), binary.AppendUvarint(nil, 1<<40)...),
		"more than the cap": append(append(bytes.Clone(head), '\n'), binary.AppendUvarint(nil, maxDecisions+1)...),
		"a byte after":      append(with(ds...), 0),
		"one byte short":    with(ds...)[:len(with(ds...))-1],
		"no decisions line": head,
		"a family of 5":     bytes.Replace(with(ds[0]), append([]byte{'\n', 1, 4}, ds[0].Value.Addr().AsSlice()...), append([]byte{'\n', 1, 5}, ds[0].Value.Addr().AsSlice()...), 1),
	}
}

// TestRestoreRefusesBadDecisions: a snapshot whose decisions are not
// what Snapshot writes (sorted, each value once and as the fold keys it,
// nothing after) is refused, and the member replays the ledger instead.
func TestRestoreRefusesBadDecisions(t *testing.T) {
	h := newHarness(t)
	h.send("a", ledger.KindReport, rep("198.51.100.1", "ssh-exploit"))
	h.send("b", ledger.KindReport, rep("2001:db8::/48", "ssh-exploit"))
	good := mustSnapshot(t, h.f)
	if _, err := Restore(h.genesis, good, Options{}); err != nil {
		t.Fatalf("the unaltered snapshot: %v", err)
	}
	for name, b := range badDecisions(t, h) {
		if bytes.Equal(b, good) {
			t.Errorf("%s: the case did not alter the snapshot", name)
			continue
		}
		if _, err := Restore(h.genesis, b, Options{}); err == nil {
			t.Errorf("%s: restored", name)
		}
	}
}

func mustSnapshot(tb testing.TB, f *Fold) []byte {
	tb.Helper()
	b, err := f.Snapshot()
	if err != nil {
		tb.Fatal(fmt.Errorf("snapshot: %w", err))
	}
	return b
}
