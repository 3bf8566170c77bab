package member

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/migrate"
)

func importedDecision(value string, origin phalanx.Origin, d time.Duration) phalanx.Decision {
	p := netip.MustParsePrefix(value)
	now := time.Now().UTC()
	return phalanx.Decision{Value: p, Type: phalanx.Ban, Scenario: "fail2ban/sshd", Duration: d,
		FirstSeen: now, LastSeen: now, Events: 5, Origin: origin, Evidence: []string{"from a test"}}
}

// TestImportedDecisions follows imported decisions through a member's
// life: written while it is down, enforced at start, added while it runs
// without a restart, kept by reconcile (which drops what the fold does not
// hold), kept across a restart, and gone for good once lifted.
func TestImportedDecisions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	if _, err := Init(dir, "imports", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	offline := importedDecision("192.0.2.50/32", migrate.OriginFail2ban, time.Hour)
	res, err := ImportOffline(dir, []phalanx.Decision{offline, importedDecision("192.0.2.51/32", migrate.OriginFail2ban, -time.Minute)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || res.Expired != 1 || res.Imported != 1 || res.Running {
		t.Errorf("offline import: %+v, want 1 added, 1 expired", res)
	}
	// Never what the member must not block: loopback here.
	res, err = ImportOffline(dir, []phalanx.Decision{importedDecision("127.0.0.0/8", migrate.OriginFail2ban, time.Hour)}, time.Now())
	if err != nil || res.Refused != 1 || res.Imported != 1 {
		t.Errorf("loopback import: %+v %v, want it refused", res, err)
	}
	if _, err := ImportOffline(dir, []phalanx.Decision{importedDecision("192.0.2.52/32", phalanx.OriginManual, time.Hour)}, time.Now()); err == nil {
		t.Error("an import with a non-import origin was accepted")
	}

	r := start(t, dir)
	d, ok := r.m.Decisions().Lookup(netip.MustParseAddr("192.0.2.50"))
	if !ok || d.Origin != migrate.OriginFail2ban {
		t.Fatalf("offline import not in force at start: %+v %v", d, ok)
	}

	c, err := Client(dir)
	if err != nil {
		t.Fatal(err)
	}
	running := importedDecision("2001:db8::/48", migrate.OriginCrowdSec, 2*time.Hour)
	running.Type = phalanx.Captcha
	res, err = c.Import(t.Context(), []phalanx.Decision{running, offline})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Running || res.Added != 1 || res.Kept != 1 || res.Imported != 2 {
		t.Errorf("running import: %+v, want 1 added, 1 kept, 2 held", res)
	}
	// In force as soon as the call returns: no restart.
	if d, ok := r.m.Decisions().Lookup(netip.MustParseAddr("2001:db8::7")); !ok || d.Type != phalanx.Captcha {
		t.Fatalf("running import not in force: %+v %v", d, ok)
	}
	// Reconcile drops every non-local decision the fold does not hold;
	// imported ones are local.
	r.m.reconcile()
	if _, ok := r.m.Decisions().Lookup(netip.MustParseAddr("192.0.2.50")); !ok {
		t.Fatal("reconcile dropped an imported decision")
	}
	list, err := c.Decisions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	origins := map[string]phalanx.Origin{}
	for _, v := range list {
		origins[v.Value] = v.Origin
	}
	if origins["192.0.2.50"] != migrate.OriginFail2ban || origins["2001:db8::/48"] != migrate.OriginCrowdSec {
		t.Errorf("GET /v1/decisions origins %v", origins)
	}

	// Lifting one, the way `phalanx decisions delete` does.
	changes, unsub := r.m.Decisions().Subscribe(64)
	if _, err := c.DeleteDecision(t.Context(), "192.0.2.50", "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changes, decisions.Deleted, netip.MustParsePrefix("192.0.2.50/32"))
	unsub()
	r.stop(t)

	r = start(t, dir)
	if _, ok := r.m.Decisions().Lookup(netip.MustParseAddr("192.0.2.50")); ok {
		t.Error("a lifted imported decision came back after a restart")
	}
	d, ok = r.m.Decisions().Lookup(netip.MustParseAddr("2001:db8::1"))
	if !ok || d.Origin != migrate.OriginCrowdSec {
		t.Errorf("imported decision lost across a restart: %+v %v", d, ok)
	}
	if want := running.Until(); !d.Until().Equal(want) {
		t.Errorf("until %v after a restart, want %v (the import's own)", d.Until(), want)
	}
}

func TestImportOfflineNeedsAMember(t *testing.T) {
	if _, err := ImportOffline(t.TempDir(), nil, time.Now()); err == nil {
		t.Error("imported into a directory that holds no member")
	}
}
