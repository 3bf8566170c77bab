package member

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/migrate"
)

// fileImported holds the decisions `phalanx import` brought from fail2ban
// or CrowdSec. They are this member's own local decisions: enforced here,
// never published unless the operator asks (`--share`), because a member
// that published thousands of reports at once would exceed the charter's
// rate limit and be flagged. The member loads them when it starts, so they
// survive restarts, and they expire on their own.
const fileImported = "imported.json"

// maxImported bounds the imported decisions a member keeps (a full
// CrowdSec community blocklist is some tens of thousands).
const maxImported = 1_000_000

// imported is the member's set of imported decisions and its file.
type imported struct {
	mu      sync.Mutex // held across file writes: they happen in order
	loaded  bool
	byValue map[netip.Prefix]phalanx.Decision
	written time.Time // imported.json's mtime after this member last wrote it
}

// save writes the set to imported.json. Under mu.
func (m *Member) saveImported(now time.Time) error {
	if err := writeImported(m.dir, m.imp.byValue, now); err != nil {
		return err
	}
	if fi, err := os.Stat(filepath.Join(m.dir, fileImported)); err == nil {
		m.imp.written = fi.ModTime()
	}
	return nil
}

// importedFile is the schema of imported.json.
type importedFile struct {
	Decisions []phalanx.Decision `json:"decisions"`
}

// ImportRequest is the body of POST /v1/imported.
type ImportRequest struct {
	Decisions []phalanx.Decision `json:"decisions"`
}

// ImportResult is what an import into a member did.
type ImportResult struct {
	Added    int  `json:"added"`    // values the member did not hold as imported
	Updated  int  `json:"updated"`  // values it held, now with a later end or a stronger type
	Kept     int  `json:"kept"`     // values it held already with an end as late
	Expired  int  `json:"expired"`  // already over when they arrived
	Refused  int  `json:"refused"`  // on this member's allowlist, loopback or an ally's territory
	Imported int  `json:"imported"` // imported decisions the member now holds
	Running  bool `json:"running"`  // a running member took them at once
}

// readImported reads dir's imported.json; a missing file is an empty set.
func readImported(dir string) (map[netip.Prefix]phalanx.Decision, error) {
	out := map[netip.Prefix]phalanx.Decision{}
	b, err := os.ReadFile(filepath.Join(dir, fileImported))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("member: %w", err)
	}
	var f importedFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("member: %s: %w (move it away and import again)", filepath.Join(dir, fileImported), err)
	}
	for _, d := range f.Decisions {
		if d.Value.IsValid() {
			out[d.Value.Masked()] = d
		}
	}
	return out, nil
}

// writeImported replaces dir's imported.json with the decisions of set
// still in force at now.
func writeImported(dir string, set map[netip.Prefix]phalanx.Decision, now time.Time) error {
	f := importedFile{Decisions: make([]phalanx.Decision, 0, len(set))}
	for _, d := range set {
		if d.Until().After(now) {
			f.Decisions = append(f.Decisions, d)
		}
	}
	slices.SortFunc(f.Decisions, func(a, b phalanx.Decision) int { return a.Value.Addr().Compare(b.Value.Addr()) })
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("member: %s: %w", fileImported, err)
	}
	return writeFile(filepath.Join(dir, fileImported), b, 0o600)
}

// mergeImported adds ds to set (expired ones dropped; for a value already
// held, the stronger type, then the later end, wins) and says what it did.
func mergeImported(set map[netip.Prefix]phalanx.Decision, ds []phalanx.Decision, never []netip.Prefix, now time.Time) (ImportResult, error) {
	var r ImportResult
	for _, d := range ds {
		if !d.Value.IsValid() {
			return r, errors.New("a decision without a valid value")
		}
		if !migrate.IsImported(d.Origin) {
			return r, fmt.Errorf("%s: origin %q is not an import's (%s…)", d.ValueString(), d.Origin, migrate.OriginPrefix)
		}
		if _, err := phalanx.ParseDecisionType(string(d.Type)); err != nil {
			return r, fmt.Errorf("%s: %w", d.ValueString(), err)
		}
		if !d.Until().After(now) {
			r.Expired++
			continue
		}
		if overlapsAny(d.Value, never) {
			// Local sovereignty: the old tool's ban on this member's own
			// allowlist or an ally's territory is not carried over.
			r.Refused++
			continue
		}
		d.Value = d.Value.Masked()
		old, ok := set[d.Value]
		switch {
		case !ok || !old.Until().After(now):
			if !ok && len(set) >= maxImported {
				return r, fmt.Errorf("more than %d imported decisions: import ranges instead of single addresses", maxImported)
			}
			set[d.Value] = d
			r.Added++
		case d.Type.Strength() > old.Type.Strength() || (d.Type == old.Type && d.Until().After(old.Until())):
			set[d.Value] = d
			r.Updated++
		default:
			r.Kept++
		}
	}
	r.Imported = len(set)
	return r, nil
}

// ImportOffline adds ds to the imported decisions of the member in dir
// while it is not running: they are enforced from its next start. A
// running member must be given them through its API (APIClient.Import)
// instead, or it would not enforce them until restarted.
func ImportOffline(dir string, ds []phalanx.Decision, now time.Time) (ImportResult, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ImportResult{}, fmt.Errorf("member: %w", err)
	}
	cfg, err := loadConfig(abs)
	if err != nil {
		return ImportResult{}, err
	}
	set, err := readImported(abs)
	if err != nil {
		return ImportResult{}, err
	}
	// Its own allowlist and territory: allies' are known only to the
	// running member's fold (and checked again by every enforcer).
	never := append([]netip.Prefix(nil), builtinNever...)
	for _, a := range append(append([]string(nil), cfg.Allowlist...), cfg.Territory...) {
		if p, err := phalanx.ParsePrefixOrAddr(a); err == nil {
			never = append(never, p)
		}
	}
	r, err := mergeImported(set, ds, never, now)
	if err != nil {
		return r, fmt.Errorf("member: import: %w", err)
	}
	return r, writeImported(abs, set, now)
}

// loadImported reads imported.json once, when the member starts.
func (m *Member) loadImported() error {
	m.imp.mu.Lock()
	defer m.imp.mu.Unlock()
	if m.imp.loaded {
		return nil
	}
	set, err := readImported(m.dir)
	if err != nil {
		return err
	}
	m.imp.byValue, m.imp.loaded = set, true
	return nil
}

// enforceImported puts the imported decisions in force into the decision
// set: at start, and again on every reconcile, since a lifted or expired
// alliance decision for the same value takes the merged record with it.
func (m *Member) enforceImported() {
	now := m.clock.Now()
	m.imp.mu.Lock()
	defer m.imp.mu.Unlock()
	for v, d := range m.imp.byValue {
		if !d.Until().After(now) {
			delete(m.imp.byValue, v)
			continue
		}
		if m.own.suspends(d, now) {
			continue // a ceasefire covers it; reconcile brings it back after
		}
		if cur, ok := m.ds.Lookup(v.Addr()); ok && cur.Value == v && !cur.Until().Before(d.Until()) && cur.Type.Strength() >= d.Type.Strength() {
			continue // in force already, as strong and as long
		}
		m.ds.Add(d)
	}
}

// liftImported drops an imported decision when this member's operator
// lifts its value (`phalanx decisions delete`): the lift goes through the
// ledger like any other, and the import must not bring the value back.
// Lifts by other members leave this member's imports alone: they are its
// own local decisions.
func (m *Member) liftImported(env ledger.Envelope) {
	if env.Author != m.id.ID {
		return
	}
	l, err := ledger.DecodeBody[ledger.Lift](env)
	if err != nil || !l.Value.IsValid() {
		return
	}
	v := phalanx.NormalizePrefix(l.Value)
	m.imp.mu.Lock()
	defer m.imp.mu.Unlock()
	if _, ok := m.imp.byValue[v]; !ok {
		return
	}
	delete(m.imp.byValue, v)
	if cur, found := m.ds.Lookup(v.Addr()); found && cur.Value == v && migrate.IsImported(cur.Origin) {
		m.ds.Delete(v)
	}
	if err := m.saveImported(m.clock.Now()); err != nil {
		m.log.Warn("member: imported decisions: could not save the lift", "value", v, "err", err)
	}
}

// postImported is POST /v1/imported: a running member takes imported
// decisions at once, enforces them and saves them in imported.json. A
// large import arrives in several requests (the body is capped at 1 MiB).
func (m *Member) postImported(w http.ResponseWriter, r *http.Request) {
	var req ImportRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := m.loadImported(); err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	now := m.clock.Now()
	m.imp.mu.Lock()
	// An offline import (ImportOffline) that wrote the file after this
	// member last did is taken too rather than overwritten.
	if fi, err := os.Stat(filepath.Join(m.dir, fileImported)); err == nil && !fi.ModTime().Equal(m.imp.written) {
		if disk, err := readImported(m.dir); err == nil {
			for v, d := range disk {
				if _, ok := m.imp.byValue[v]; !ok {
					m.imp.byValue[v] = d
				}
			}
		}
	}
	res, err := mergeImported(m.imp.byValue, req.Decisions, m.Never(), now)
	if err != nil {
		m.imp.mu.Unlock()
		badRequest(w, "decisions: %v", err)
		return
	}
	if err := m.saveImported(now); err != nil {
		m.imp.mu.Unlock()
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	// Only what this request brought: enforceImported over the whole set
	// would cost a lookup per held decision per batch.
	add := make([]phalanx.Decision, 0, len(req.Decisions))
	for _, d := range req.Decisions {
		if cur, ok := m.imp.byValue[d.Value.Masked()]; ok {
			add = append(add, cur)
		}
	}
	m.imp.mu.Unlock()
	for _, d := range add {
		m.ds.Add(d)
	}
	m.ds.Settle()
	res.Running = true
	m.log.Info("decisions imported", "added", res.Added, "updated", res.Updated, "imported", res.Imported)
	writeJSON(w, http.StatusOK, res)
}

// importBatch keeps each request under the API's 1 MiB body limit: a
// decision with its trimmed evidence is at most some 600 bytes of JSON.
const importBatch = 1000

// Import gives a running member imported decisions (POST /v1/imported),
// in batches.
func (c *APIClient) Import(ctx context.Context, ds []phalanx.Decision, progress ...func(done, total int)) (ImportResult, error) {
	var total ImportResult
	for start := 0; start < len(ds) || start == 0; start += importBatch {
		for _, p := range progress {
			p(start, len(ds))
		}
		batch := ds[start:min(start+importBatch, len(ds))]
		var r ImportResult
		if err := c.do(ctx, http.MethodPost, "/v1/imported", ImportRequest{Decisions: trimEvidence(batch)}, &r); err != nil {
			return total, err
		}
		total.Added += r.Added
		total.Updated += r.Updated
		total.Kept += r.Kept
		total.Expired += r.Expired
		total.Refused += r.Refused
		total.Imported = r.Imported
		total.Running = true
		if len(ds) == 0 {
			break
		}
	}
	return total, nil
}

// trimEvidence keeps the last evidence line, of at most 160 bytes, per
// decision: enough to say where it came from, and a batch stays under the
// body limit whatever the input held.
func trimEvidence(ds []phalanx.Decision) []phalanx.Decision {
	out := make([]phalanx.Decision, len(ds))
	for i, d := range ds {
		ev := d.Evidence[max(0, len(d.Evidence)-1):]
		d.Evidence = make([]string, 0, len(ev))
		for _, l := range ev {
			if len(l) > 160 {
				l = strings.ToValidUTF8(l[:160], "")
			}
			d.Evidence = append(d.Evidence, l)
		}
		out[i] = d
	}
	return out
}

func overlapsAny(p netip.Prefix, ps []netip.Prefix) bool {
	for _, q := range ps {
		if q.IsValid() && p.Overlaps(q) {
			return true
		}
	}
	return false
}
