package alliance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
)

// decodeBody decodes an envelope body strictly: unknown fields are refused
// so two versions of phalanx cannot read one body two ways.
func decodeBody(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("alliance: body: %w", err)
	}
	return nil
}

// guard refuses values inside allied territory or a pact party's prefixes;
// a pact hit is recorded as a breach.
func (f *Fold) guard(v netip.Prefix, author ledger.MemberID, scenario string, seq uint64, at time.Time) string {
	for _, id := range f.order {
		m := f.members[id]
		if m.Expelled {
			continue
		}
		for _, t := range m.Territory {
			if t.Overlaps(v) {
				return ReasonTerritory
			}
		}
	}
	for _, p := range f.charter.Pacts {
		if p.Suspended {
			continue
		}
		for _, pp := range p.Prefixes {
			if pp.Overlaps(v) {
				if len(f.breaches) >= maxBreaches {
					f.breaches = slices.Delete(f.breaches, 0, 1)
				}
				f.breaches = append(f.breaches, Breach{Seq: seq, At: at, Author: author, Pact: p.Name, Value: v, Scenario: scenario})
				f.log.Warn("alliance: pact breach", "pact", p.Name, "author", author, "value", v, "scenario", scenario, "seq", seq)
				return ReasonPact
			}
		}
	}
	return ""
}

func validScenario(s string) bool { return s != "" && len(s) <= maxScenarioLen }

func (f *Fold) applyReport(env ledger.Envelope, payload any, m *member, seq uint64, at time.Time) Outcome {
	r, ok := payload.(*ledger.Report)
	if !ok {
		r = new(ledger.Report)
		if decodeBody(env.Body, r) != nil {
			return Outcome{Reason: ReasonBadBody}
		}
	}
	return f.report(*r, env.Kind == ledger.KindManual, m, seq, at)
}

// applyReports folds a batch of reports: each is one report, as if it
// had its own envelope at the batch's position. Each counts against the
// author's rate limit, and one refused (over the rate, in territory, ...)
// does not refuse the others; the batch is accepted when its body is
// well formed, and Refused counts the reports it did not fold.
func (f *Fold) applyReports(env ledger.Envelope, payload any, m *member, seq uint64, at time.Time) Outcome {
	b, ok := payload.(*ledger.Reports)
	if !ok {
		b = new(ledger.Reports)
		if decodeBody(env.Body, b) != nil {
			return Outcome{Reason: ReasonBadBody}
		}
	}
	if len(b.Reports) == 0 || len(b.Reports) > ledger.MaxReports {
		return Outcome{Reason: ReasonBadBody}
	}
	out := Outcome{Accepted: true}
	for _, r := range b.Reports {
		if !f.allowReport(m, seq, at) {
			out.Refused++
			f.count(env, seq, ReasonRateLimit)
			continue
		}
		o := f.report(r, false, m, seq, at)
		if !o.Accepted {
			out.Refused++
			f.count(env, seq, o.Reason)
			continue
		}
		out.Changes = append(out.Changes, o.Changes...)
	}
	return out
}

// report folds one report (or manual decision) by m at stream position
// seq.
func (f *Fold) report(r ledger.Report, manual bool, m *member, seq uint64, at time.Time) Outcome {
	if !r.Value.IsValid() || r.Duration <= 0 {
		return Outcome{Reason: ReasonBadBody}
	}
	scenario := r.Scenario
	if manual {
		scenario = "manual"
	}
	if !validScenario(scenario) {
		return Outcome{Reason: ReasonBadBody}
	}
	if _, err := phalanx.ParseDecisionType(string(r.Type)); err != nil {
		return Outcome{Reason: ReasonBadBody}
	}
	v := normalize(r.Value)
	if reason := f.guard(v, m.ID, scenario, seq, at); reason != "" {
		return Outcome{Reason: reason}
	}
	rep := report{
		Member: m.ID, Protected: m.Protects, Manual: manual, Seq: seq, At: at,
		Scenario: scenario, Type: r.Type, Duration: min(r.Duration, maxDuration),
		FirstSeen: r.FirstSeen.UTC(), Events: max(r.Events, 0), Evidence: clip(r.Evidence),
	}
	if m.Protects {
		rep.Guarantor = m.Guarantor
	}
	p := f.pendingFor(v, at)
	defer f.trimPending()
	p.Reports = slices.DeleteFunc(p.Reports, func(o report) bool { return o.Member == m.ID })
	if len(p.Reports) >= maxReportsPerValue {
		p.Reports = slices.Delete(p.Reports, 0, 1)
	}
	p.Reports = append(p.Reports, rep)

	counting := countingReports(p.Reports, func(r report) ledger.MemberID { return r.Member },
		func(r report) (bool, ledger.MemberID) { return r.Protected, r.Guarantor })
	if m.Protects && !slices.ContainsFunc(counting, func(r report) bool { return r.Member == m.ID }) {
		return Outcome{Reason: ReasonUncorroboratedProtected}
	}
	need := 0
	for _, r := range counting {
		if n := required(f.policy, r.Scenario); need == 0 || n < need {
			need = n
		}
	}
	if len(counting) == 0 || len(counting) < need {
		return Outcome{Accepted: true}
	}
	d := &Decision{Since: seq}
	d.Value = v
	d.Scenario = scenario
	d.Origin = phalanx.OriginAlliance
	if manual {
		d.Origin = phalanx.OriginManual
	}
	d.LastSeen = at
	for _, r := range counting {
		d.Reporters = append(d.Reporters, r.Member)
		if r.Type.Strength() > d.Type.Strength() {
			d.Type = r.Type
		}
		d.Duration = max(d.Duration, r.Duration)
		if !r.FirstSeen.IsZero() && (d.FirstSeen.IsZero() || r.FirstSeen.Before(d.FirstSeen)) {
			d.FirstSeen = r.FirstSeen
		}
		d.Events += min(r.Events, 1<<20)
		for _, e := range r.Evidence {
			if len(d.Evidence) < maxEvidence {
				d.Evidence = append(d.Evidence, e)
			}
		}
	}
	f.dropPending(v)
	if old, ok := f.decisions[v]; ok && !d.Until().After(old.Until()) && d.Type.Strength() <= old.Type.Strength() {
		// Already in force for at least as long and as hard.
		return Outcome{Accepted: true}
	}
	f.put(d)
	return Outcome{Accepted: true, Changes: []Change{{Op: ChangeAdd, Decision: cloneDecision(*d)}}}
}

// countingReports keeps the entries whose author counts: members always,
// protected parties once their guarantor has an entry too. One per author,
// in ledger order.
func countingReports[T any](all []T, who func(T) ledger.MemberID, prot func(T) (bool, ledger.MemberID)) []T {
	var out []T
	for _, r := range all {
		p, g := prot(r)
		if !p {
			out = append(out, r)
			continue
		}
		if slices.ContainsFunc(all, func(o T) bool { q, _ := prot(o); return !q && who(o) == g }) {
			out = append(out, r)
		}
	}
	return out
}

func clip(ev []string) []string {
	var out []string
	for _, e := range ev {
		if len(out) == maxEvidence {
			break
		}
		if len(e) > maxEvidenceLen {
			e = e[:maxEvidenceLen]
		}
		out = append(out, e)
	}
	return out
}

// pendingFor returns v's pending reports, pruned to the window and marked
// most recently used. The caller trims the set afterwards, so a report
// that decides at once never evicts a pending one.
func (f *Fold) pendingFor(v netip.Prefix, at time.Time) *pending {
	cut := at.Add(-f.policy.Window)
	if e, ok := f.pending[v]; ok {
		f.pendingLRU.MoveToBack(e)
		p := e.Value.(*pending)
		p.Reports = slices.DeleteFunc(p.Reports, func(r report) bool { return !r.At.After(cut) })
		return p
	}
	p := &pending{Value: v}
	f.pending[v] = f.pendingLRU.PushBack(p)
	return p
}

// trimPending evicts the least recently reported values over the cap.
func (f *Fold) trimPending() {
	for len(f.pending) > f.caps.pendingValues {
		f.dropPending(f.pendingLRU.Front().Value.(*pending).Value)
	}
}

func (f *Fold) dropPending(v netip.Prefix) {
	if e, ok := f.pending[v]; ok {
		f.pendingLRU.Remove(e)
		delete(f.pending, v)
	}
}

func (f *Fold) applySighting(env ledger.Envelope, m *member, seq uint64, at time.Time) Outcome {
	var s ledger.Sighting
	if decodeBody(env.Body, &s) != nil || !s.Source.IsValid() || s.Events <= 0 || !validScenario(s.Scenario) {
		return Outcome{Reason: ReasonBadBody}
	}
	src := s.Source.Unmap()
	v := netip.PrefixFrom(src, src.BitLen())
	scenario := "collective:" + s.Scenario
	if reason := f.guard(v, m.ID, scenario, seq, at); reason != "" {
		return Outcome{Reason: reason}
	}
	// One member's sighting never weighs more than the whole threshold:
	// the members rule, not one loud member, decides.
	sg := sighting{Member: m.ID, Protected: m.Protects, At: at, Scenario: s.Scenario, Events: min(s.Events, f.policy.SightingEvents)}
	if m.Protects {
		sg.Guarantor = m.Guarantor
	}
	cut := at.Add(-f.policy.Window)
	var ss *sightings
	if e, ok := f.sighted[src]; ok {
		f.sightingLRU.MoveToBack(e)
		ss = e.Value.(*sightings)
		ss.List = slices.DeleteFunc(ss.List, func(o sighting) bool { return !o.At.After(cut) })
	} else {
		ss = &sightings{Source: src}
		f.sighted[src] = f.sightingLRU.PushBack(ss)
	}
	// Trimmed after the decision, so a sighting that decides never evicts.
	defer func() {
		for len(f.sighted) > f.caps.sightingSources {
			f.dropSightings(f.sightingLRU.Front().Value.(*sightings).Source)
		}
	}()
	if len(ss.List) >= maxSightingsPer {
		ss.List = slices.Delete(ss.List, 0, 1)
	}
	ss.List = append(ss.List, sg)

	counting := countingReports(ss.List, func(s sighting) ledger.MemberID { return s.Member },
		func(s sighting) (bool, ledger.MemberID) { return s.Protected, s.Guarantor })
	if m.Protects && !slices.ContainsFunc(counting, func(s sighting) bool { return s.Member == m.ID }) {
		return Outcome{Reason: ReasonUncorroboratedProtected}
	}
	events, who := 0, map[ledger.MemberID]bool{}
	var reporters []ledger.MemberID
	for _, s := range counting {
		events += s.Events
		if !who[s.Member] {
			who[s.Member] = true
			reporters = append(reporters, s.Member)
		}
	}
	if events < f.policy.SightingEvents || len(who) < f.policy.SightingMembers {
		return Outcome{Accepted: true}
	}
	d := &Decision{Since: seq, Reporters: reporters}
	d.Value, d.Type, d.Scenario, d.Duration = v, phalanx.Ban, scenario, f.policy.SightingDuration
	d.Origin, d.LastSeen, d.Events = phalanx.OriginAlliance, at, events
	d.FirstSeen = counting[0].At
	f.dropSightings(src)
	if old, ok := f.decisions[v]; ok && !d.Until().After(old.Until()) && d.Type.Strength() <= old.Type.Strength() {
		return Outcome{Accepted: true}
	}
	f.put(d)
	return Outcome{Accepted: true, Changes: []Change{{Op: ChangeAdd, Decision: cloneDecision(*d)}}}
}

func (f *Fold) dropSightings(a netip.Addr) {
	if e, ok := f.sighted[a]; ok {
		f.sightingLRU.Remove(e)
		delete(f.sighted, a)
	}
}

func (f *Fold) applyLift(env ledger.Envelope, m *member, at time.Time) Outcome {
	var l ledger.Lift
	if decodeBody(env.Body, &l) != nil || !l.Value.IsValid() {
		return Outcome{Reason: ReasonBadBody}
	}
	if m.Protects {
		return Outcome{Reason: ReasonForbidden}
	}
	v := normalize(l.Value)
	f.dropPending(v)
	if v.IsSingleIP() {
		f.dropSightings(v.Addr())
	}
	d, ok := f.decisions[v]
	if !ok || !d.Until().After(at) {
		return Outcome{Accepted: true}
	}
	f.remove(v)
	return Outcome{Accepted: true, Changes: []Change{{Op: ChangeLift, Decision: *d}}}
}

func (f *Fold) applyCeasefire(env ledger.Envelope, m *member, seq uint64, at time.Time) Outcome {
	var c ledger.Ceasefire
	if decodeBody(env.Body, &c) != nil || c.ID == "" || len(c.ID) > maxScenarioLen || !c.Until.After(at) ||
		c.Until.Sub(at) > maxCeasefire || len(c.Scenario) > maxScenarioLen {
		return Outcome{Reason: ReasonBadBody}
	}
	if m.Protects {
		return Outcome{Reason: ReasonForbidden}
	}
	if c.Scope.IsValid() {
		c.Scope = normalize(c.Scope)
	}
	c.Until = c.Until.UTC()
	f.ceasefires = slices.DeleteFunc(f.ceasefires, func(o ceasefire) bool { return !o.Until.After(at) })
	if slices.ContainsFunc(f.ceasefires, func(o ceasefire) bool { return o.ID == c.ID }) {
		return Outcome{Reason: ReasonDuplicate}
	}
	if len(f.ceasefires) >= maxCeasefires {
		return Outcome{Reason: ReasonFull}
	}
	f.ceasefires = append(f.ceasefires, ceasefire{Ceasefire: c, Author: m.ID, Seq: seq})
	f.log.Warn("alliance: ceasefire", "id", c.ID, "until", c.Until, "scenario", c.Scenario, "scope", c.Scope, "author", m.ID, "reason", c.Reason)
	return Outcome{Accepted: true}
}

func (f *Fold) applyCeasefireEnd(env ledger.Envelope, m *member) Outcome {
	var c ledger.CeasefireEnd
	if decodeBody(env.Body, &c) != nil || c.ID == "" {
		return Outcome{Reason: ReasonBadBody}
	}
	if m.Protects {
		return Outcome{Reason: ReasonForbidden}
	}
	f.ceasefires = slices.DeleteFunc(f.ceasefires, func(o ceasefire) bool { return o.ID == c.ID })
	return Outcome{Accepted: true}
}

func (f *Fold) applyExpel(env ledger.Envelope, m *member, seq uint64) Outcome {
	var x ledger.Expel
	if decodeBody(env.Body, &x) != nil {
		return Outcome{Reason: ReasonBadBody}
	}
	if !m.Council {
		return Outcome{Reason: ReasonForbidden}
	}
	t, ok := f.members[x.Member]
	if !ok {
		return Outcome{Reason: ReasonBadBody}
	}
	t.Expelled = true
	// Its pending reports and sightings stop counting: an expelled member
	// must not help decide after its expulsion. Filtering is the same in
	// any iteration order, so the fold stays deterministic.
	for v, e := range f.pending {
		p := e.Value.(*pending)
		if p.Reports = slices.DeleteFunc(p.Reports, func(r report) bool { return r.Member == x.Member }); len(p.Reports) == 0 {
			f.dropPending(v)
		}
	}
	for a, e := range f.sighted {
		ss := e.Value.(*sightings)
		if ss.List = slices.DeleteFunc(ss.List, func(s sighting) bool { return s.Member == x.Member }); len(ss.List) == 0 {
			f.dropSightings(a)
		}
	}
	f.log.Warn("alliance: member expelled", "member", x.Member, "by", m.ID, "reason", x.Reason, "seq", seq)
	return Outcome{Accepted: true}
}

func (f *Fold) applyKeyRotation(env ledger.Envelope, m *member) Outcome {
	var k ledger.KeyRotation
	if decodeBody(env.Body, &k) != nil || len(k.NewPublicKey) != 32 {
		return Outcome{Reason: ReasonBadBody}
	}
	m.PublicKey = slices.Clone(k.NewPublicKey)
	return Outcome{Accepted: true}
}

func (f *Fold) applyDrill(env ledger.Envelope, m *member, seq uint64, at time.Time) Outcome {
	var d ledger.Drill
	if decodeBody(env.Body, &d) != nil || d.ID == "" || len(d.ID) > maxScenarioLen || !drillRange.Contains(d.Value.Unmap()) {
		return Outcome{Reason: ReasonBadBody}
	}
	if slices.ContainsFunc(f.drills, func(o DrillResult) bool { return o.ID == d.ID }) {
		return Outcome{Reason: ReasonDuplicate}
	}
	if len(f.drills) >= maxDrills {
		f.drills = slices.Delete(f.drills, 0, 1)
	}
	a := d.Value.Unmap()
	f.drills = append(f.drills, DrillResult{ID: d.ID, Seq: seq, At: at, Author: m.ID, Value: a})
	dec := &Decision{Since: seq, Reporters: []ledger.MemberID{m.ID}}
	dec.Value, dec.Type, dec.Scenario, dec.Duration = netip.PrefixFrom(a, a.BitLen()), phalanx.Ban, "drill", drillDuration
	dec.Origin, dec.FirstSeen, dec.LastSeen, dec.Events = phalanx.OriginAlliance, at, at, 1
	f.put(dec)
	return Outcome{Accepted: true, Changes: []Change{{Op: ChangeAdd, Decision: cloneDecision(*dec)}}}
}

func (f *Fold) applyDrillAck(env ledger.Envelope, m *member, at time.Time) Outcome {
	var a ledger.DrillAck
	if decodeBody(env.Body, &a) != nil {
		return Outcome{Reason: ReasonBadBody}
	}
	i := slices.IndexFunc(f.drills, func(o DrillResult) bool { return o.ID == a.DrillID })
	if i < 0 {
		return Outcome{Reason: ReasonUnknownDrill}
	}
	d := &f.drills[i]
	if slices.ContainsFunc(d.Acks, func(o DrillAck) bool { return o.Member == m.ID }) || len(d.Acks) >= maxAcksPerDrill {
		return Outcome{Reason: ReasonDuplicate}
	}
	d.Acks = append(d.Acks, DrillAck{Member: m.ID, Latency: at.Sub(d.At), InForceAt: a.InForceAt.UTC()})
	return Outcome{Accepted: true}
}

func (f *Fold) applyHeartbeat(env ledger.Envelope, m *member, at time.Time) Outcome {
	var h ledger.Heartbeat
	if decodeBody(env.Body, &h) != nil {
		return Outcome{Reason: ReasonBadBody}
	}
	m.LastHeartbeat, m.Applied = at, h.Applied
	return Outcome{Accepted: true}
}

// applyCharter installs a new charter version from a council member: the
// next version number, the same founder.
func (f *Fold) applyCharter(env ledger.Envelope, m *member) Outcome {
	c, err := charter.FromEnvelope(env)
	if err != nil || c.Version != f.charter.Version+1 || c.Founder != f.charter.Founder {
		return Outcome{Reason: ReasonBadBody}
	}
	if !m.Council {
		return Outcome{Reason: ReasonForbidden}
	}
	if err := f.setCharter(c); err != nil {
		return Outcome{Reason: ReasonBadBody}
	}
	return Outcome{Accepted: true}
}
