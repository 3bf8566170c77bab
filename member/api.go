package member

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/alliance"
	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
)

// API limits.
const (
	maxBody         = 1 << 20
	drillWait       = 5 * time.Second
	defaultDuration = 4 * time.Hour
	maxReason       = 1024
)

// drillRange is the RFC 2544 benchmarking space: nothing real lives there,
// so a drill can never ban anyone.
var drillRange = netip.MustParsePrefix("198.18.0.0/15")

// DecisionView is one decision as the API lists it.
type DecisionView struct {
	Value     string               `json:"value"`
	Scope     phalanx.Scope        `json:"scope"`
	Type      phalanx.DecisionType `json:"type"`
	Scenario  string               `json:"scenario"`
	Origin    phalanx.Origin       `json:"origin"`
	Reporters []ledger.MemberID    `json:"reporters,omitempty"`
	Duration  string               `json:"duration"`
	FirstSeen time.Time            `json:"first_seen"`
	LastSeen  time.Time            `json:"last_seen"`
	Until     time.Time            `json:"until"`
	Events    int                  `json:"events"`
	Evidence  []string             `json:"evidence,omitempty"`
}

// DecisionRequest is the body of POST /v1/decisions.
type DecisionRequest struct {
	Value    string `json:"value"`              // an address or CIDR
	Type     string `json:"type,omitempty"`     // ban (default), captcha, throttle
	Duration string `json:"duration,omitempty"` // Go duration, default 4h
	Reason   string `json:"reason"`
}

// CeasefireRequest is the body of POST /v1/ceasefire.
type CeasefireRequest struct {
	For      string `json:"for"`                // Go duration
	Scenario string `json:"scenario,omitempty"` // empty: every scenario
	Scope    string `json:"scope,omitempty"`    // CIDR; empty: every address
	Reason   string `json:"reason"`
}

// Published is what a write returns: the envelope ID and stream position.
type Published struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

// CeasefireStarted is what POST /v1/ceasefire returns.
type CeasefireStarted struct {
	Published
	Ceasefire string    `json:"ceasefire"` // the ID to end it with
	Until     time.Time `json:"until"`
}

// CharterView is GET /v1/charter.
type CharterView struct {
	Explain string          `json:"explain"`
	Charter charter.Charter `json:"charter"`
}

// DrillMember is one member's part of a drill.
type DrillMember struct {
	ID ledger.MemberID `json:"id"`
	MS float64         `json:"ms"`
	OK bool            `json:"ok"`
}

// DrillResult is POST /v1/drill.
type DrillResult struct {
	ID      string        `json:"id"`
	Value   string        `json:"value"`
	Members []DrillMember `json:"members"`
	P50MS   float64       `json:"p50_ms"`
	P99MS   float64       `json:"p99_ms"`
}

// Health is GET /v1/health.
type Health struct {
	OK         bool              `json:"ok"`
	Member     ledger.MemberID   `json:"member"`
	Alliance   string            `json:"alliance"`
	Connected  bool              `json:"connected"`
	Applied    uint64            `json:"applied"`
	Decisions  int               `json:"decisions"`
	Rejections map[string]uint64 `json:"rejections,omitempty"`
}

type apiError struct {
	Error string `json:"error"`
}

// serveAPI serves the local API until ctx ends, and writes the address it
// listens on to api.addr.
func (m *Member) serveAPI(ctx context.Context) error {
	l, err := net.Listen("tcp", m.api)
	if err != nil {
		return fmt.Errorf("member: API listen %s: %w (choose another address with --api)", m.api, err)
	}
	if ap, err := netip.ParseAddrPort(l.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		m.log.Warn("member: the local API listens beyond loopback", "addr", l.Addr().String())
	}
	if err := writeFile(filepath.Join(m.dir, fileAPIAddr), []byte(l.Addr().String()+"\n"), 0o644); err != nil {
		l.Close()
		return err
	}
	srv := &http.Server{
		Handler:           m.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      drillWait + 10*time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	m.readyOnce.Do(func() { close(m.ready) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("member: API: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-errc
		return nil
	}
}

func (m *Member) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", m.getHealth)
	mux.HandleFunc("GET /v1/decisions", m.getDecisions)
	mux.HandleFunc("POST /v1/decisions", m.postDecision)
	mux.HandleFunc("DELETE /v1/decisions", m.deleteDecision)
	mux.HandleFunc("GET /v1/members", m.getMembers)
	mux.HandleFunc("GET /v1/charter", m.getCharter)
	mux.HandleFunc("POST /v1/ceasefire", m.postCeasefire)
	mux.HandleFunc("DELETE /v1/ceasefire", m.deleteCeasefire)
	mux.HandleFunc("POST /v1/drill", m.postDrill)
	mux.HandleFunc("GET /v1/events", m.getEvents)
	mux.Handle("GET /metrics", m.metricsHandler())
	m.adminRoutes(mux) // admin.go: expel, key rotation
	authed := m.auth(mux)
	if len(m.mounts) > 0 {
		// Extra handlers (the dashboard's static files) answer their own
		// paths before the token check: they carry no data, and whatever
		// data they fetch goes through the token-guarded routes.
		outer := http.NewServeMux()
		for pattern, h := range m.mounts {
			outer.Handle(pattern, h)
		}
		outer.Handle("/", authed)
		authed = outer
	}
	if m.bouncers == nil {
		return authed
	}
	// CrowdSec bouncers share the address: they authenticate with
	// X-Api-Key (and are answered the way CrowdSec's LAPI answers them),
	// the operator's tools with the bearer token.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/decisions/stream" || r.Header.Get("X-Api-Key") != "" {
			m.bouncers.ServeHTTP(w, r)
			return
		}
		authed.ServeHTTP(w, r)
	})
}

// Mount serves h for pattern (http.ServeMux syntax) on the member's local
// API address without the token check: for static content such as the
// dashboard's page, whose data calls use the token-guarded routes. Call
// before Run.
func (m *Member) Mount(pattern string, h http.Handler) {
	if m.mounts == nil {
		m.mounts = map[string]http.Handler{}
	}
	m.mounts[pattern] = h
}

// MountBouncerAPI serves a CrowdSec-compatible bouncer API (bouncerapi)
// on the member's local API address. Call before Run.
func (m *Member) MountBouncerAPI(h http.Handler) { m.bouncers = h }

// auth requires a token on every route: decisions and members are not for
// whoever else runs code on the machine. The admin token (api.token) may do
// everything; the read-only token (api.readonly) only reads — GET and HEAD.
func (m *Member) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + m.token)
	var wantRO []byte
	if m.roToken != "" {
		wantRO = []byte("Bearer " + m.roToken)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			writeJSON(w, http.StatusUnauthorized, apiError{"missing Authorization: Bearer <token> (the token is in the data directory's api.token)"})
			return
		}
		admin := subtle.ConstantTimeCompare([]byte(h), want) == 1
		readOnly := wantRO != nil && subtle.ConstantTimeCompare([]byte(h), wantRO) == 1
		switch {
		case admin:
		case readOnly && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		case readOnly:
			writeJSON(w, http.StatusForbidden, apiError{"read-only token: writes need the admin token in api.token"})
			return
		default:
			writeJSON(w, http.StatusForbidden, apiError{"wrong token"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, format string, a ...any) {
	writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf(format, a...)})
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{"body larger than 1 MiB"})
			return false
		}
		badRequest(w, "malformed JSON body: %v", err)
		return false
	}
	if dec.More() {
		badRequest(w, "malformed JSON body: more than one value")
		return false
	}
	return true
}

func (m *Member) written(w http.ResponseWriter, err error) bool {
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return false
	}
	return true
}

func (m *Member) getHealth(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	h := Health{OK: true, Member: m.id.ID, Alliance: m.alliance, Applied: m.fold.Applied(),
		Rejections: m.fold.Rejections(), Connected: m.bus != nil && m.bus.Connected()}
	m.mu.Unlock()
	h.Decisions = m.ds.Len()
	h.OK = h.Connected
	writeJSON(w, http.StatusOK, h)
}

func (m *Member) getDecisions(w http.ResponseWriter, r *http.Request) {
	now := m.clock.Now()
	reporters := map[netip.Prefix][]ledger.MemberID{}
	m.mu.Lock()
	for _, d := range m.fold.Decisions(now) {
		reporters[d.Value] = d.Reporters
	}
	m.mu.Unlock()
	list := m.ds.List()
	out := make([]DecisionView, 0, len(list))
	for _, d := range list {
		out = append(out, DecisionView{
			Value: d.ValueString(), Scope: d.Scope(), Type: d.Type, Scenario: d.Scenario, Origin: d.Origin,
			Reporters: reporters[d.Value], Duration: d.Duration.String(), FirstSeen: d.FirstSeen,
			LastSeen: d.LastSeen, Until: d.Until(), Events: d.Events, Evidence: d.Evidence,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *Member) postDecision(w http.ResponseWriter, r *http.Request) {
	var req DecisionRequest
	if !decodeBody(w, r, &req) {
		return
	}
	p, err := phalanx.ParsePrefixOrAddr(req.Value)
	if err != nil {
		badRequest(w, "value: %v", err)
		return
	}
	typ := phalanx.Ban
	if req.Type != "" {
		if typ, err = phalanx.ParseDecisionType(req.Type); err != nil {
			badRequest(w, "type: %v", err)
			return
		}
	}
	dur := defaultDuration
	if req.Duration != "" {
		if dur, err = time.ParseDuration(req.Duration); err != nil || dur <= 0 {
			badRequest(w, "duration %q: give a positive Go duration such as 4h or 30m", req.Duration)
			return
		}
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > maxReason {
		badRequest(w, "reason: say why, in at most %d bytes", maxReason)
		return
	}
	now := m.clock.Now().UTC()
	pub, err := m.publish(r.Context(), ledger.KindManual, ledger.Report{
		Value: p, Type: typ, Scenario: "manual", Duration: dur, FirstSeen: now, LastSeen: now,
		Events: 1, Reason: req.Reason,
	})
	if !m.written(w, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, Published{ID: pub.ID, Seq: pub.Seq})
}

func (m *Member) deleteDecision(w http.ResponseWriter, r *http.Request) {
	p, err := phalanx.ParsePrefixOrAddr(r.URL.Query().Get("value"))
	if err != nil {
		badRequest(w, "value: %v", err)
		return
	}
	reason := r.URL.Query().Get("reason")
	if reason == "" {
		reason = "lifted by an operator"
	}
	if len(reason) > maxReason {
		badRequest(w, "reason: at most %d bytes", maxReason)
		return
	}
	pub, err := m.publish(r.Context(), ledger.KindLift, ledger.Lift{Value: p, Reason: reason})
	if !m.written(w, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, Published{ID: pub.ID, Seq: pub.Seq})
}

func (m *Member) getMembers(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	ms := m.fold.Members()
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, ms)
}

func (m *Member) getCharter(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	c := m.fold.Charter()
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, CharterView{Explain: c.Explain(), Charter: c})
}

func (m *Member) postCeasefire(w http.ResponseWriter, r *http.Request) {
	var req CeasefireRequest
	if !decodeBody(w, r, &req) {
		return
	}
	dur, err := time.ParseDuration(req.For)
	if err != nil || dur <= 0 {
		badRequest(w, "for %q: give a positive Go duration such as 30m", req.For)
		return
	}
	var scope netip.Prefix
	if req.Scope != "" {
		if scope, err = phalanx.ParsePrefixOrAddr(req.Scope); err != nil {
			badRequest(w, "scope: %v", err)
			return
		}
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > maxReason {
		badRequest(w, "reason: say why, in at most %d bytes", maxReason)
		return
	}
	c := ledger.Ceasefire{ID: randomHex(8), Until: m.clock.Now().UTC().Add(dur), Scenario: req.Scenario, Scope: scope, Reason: req.Reason}
	pub, err := m.publish(r.Context(), ledger.KindCeasefire, c)
	if !m.written(w, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, CeasefireStarted{Published: Published{ID: pub.ID, Seq: pub.Seq}, Ceasefire: c.ID, Until: c.Until})
}

func (m *Member) deleteCeasefire(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" || len(id) > 64 {
		badRequest(w, "id: give the ceasefire's id")
		return
	}
	pub, err := m.publish(r.Context(), ledger.KindCeasefireEnd, ledger.CeasefireEnd{ID: id})
	if !m.written(w, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, Published{ID: pub.ID, Seq: pub.Seq})
}

// drillAddr picks a random address in the benchmarking range.
func drillAddr() netip.Addr {
	var r [3]byte
	rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	return netip.AddrFrom4([4]byte{198, 18 | r[0]&1, r[1], r[2]})
}

func (m *Member) postDrill(w http.ResponseWriter, r *http.Request) {
	id := randomHex(8)
	value := drillAddr()
	acks := make(chan struct{}, 1)
	m.drillMu.Lock()
	m.drills[id] = acks
	m.drillMu.Unlock()
	defer func() {
		m.drillMu.Lock()
		delete(m.drills, id)
		m.drillMu.Unlock()
	}()
	m.mu.Lock()
	var expect []ledger.MemberID
	for _, ms := range m.fold.Members() {
		if !ms.Expelled {
			expect = append(expect, ms.ID)
		}
	}
	m.mu.Unlock()

	if _, err := m.publish(r.Context(), ledger.KindDrill, ledger.Drill{ID: id, Value: value}); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	deadline := time.NewTimer(drillWait)
	defer deadline.Stop()
	var got map[ledger.MemberID]time.Duration
wait:
	for {
		m.mu.Lock()
		got = drillAcks(m.fold.Drills(), id)
		m.mu.Unlock()
		if allAcked(expect, got) {
			break
		}
		select {
		case <-acks:
		case <-deadline.C:
			m.mu.Lock()
			got = drillAcks(m.fold.Drills(), id)
			m.mu.Unlock()
			break wait
		case <-r.Context().Done():
			return
		}
	}
	writeJSON(w, http.StatusOK, drillResult(id, value, expect, got))
}

func allAcked(expect []ledger.MemberID, got map[ledger.MemberID]time.Duration) bool {
	for _, e := range expect {
		if _, ok := got[e]; !ok {
			return false
		}
	}
	return true
}

func drillAcks(ds []alliance.DrillResult, id string) map[ledger.MemberID]time.Duration {
	got := map[ledger.MemberID]time.Duration{}
	for _, d := range ds {
		if d.ID != id {
			continue
		}
		for _, a := range d.Acks {
			got[a.Member] = a.Latency
		}
	}
	return got
}

func drillResult(id string, value netip.Addr, expect []ledger.MemberID, got map[ledger.MemberID]time.Duration) DrillResult {
	res := DrillResult{ID: id, Value: value.String(), Members: []DrillMember{}}
	var ms []float64
	for _, e := range expect {
		l, ok := got[e]
		dm := DrillMember{ID: e, OK: ok}
		if ok {
			dm.MS = float64(l.Microseconds()) / 1000
			ms = append(ms, dm.MS)
		}
		res.Members = append(res.Members, dm)
	}
	slices.Sort(ms)
	res.P50MS, res.P99MS = quantile(ms, 0.50), quantile(ms, 0.99)
	return res
}

// quantile is the nearest-rank quantile of sorted values; 0 when empty.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
