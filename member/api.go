package member

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
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
	// maxDecisionDuration and maxCeasefireFor are the fold's own caps
	// (alliance: a report asks for at most 30 days, a ceasefire lasts at
	// most 24 h): refused here with a reason rather than clamped or
	// rejected silently by every member's fold after a 202.
	maxDecisionDuration = 30 * 24 * time.Hour
	maxCeasefireFor     = 24 * time.Hour
	maxScenario         = 128
	// maxEventStreams bounds the open GET /v1/events streams: each holds a
	// goroutine, a subscription buffer and a connection, so a client that
	// opens thousands must be refused rather than exhaust the member. A
	// dashboard tab holds one.
	maxEventStreams = 64
	// maxListLimit is the largest ?limit= on GET /v1/decisions.
	maxListLimit = 1_000_000
	// maxHeaderBytes bounds a request's headers (net/http's default is
	// 1 MiB; a bearer token and a few headers need far less).
	maxHeaderBytes = 64 << 10
	// readHeaderTimeout cuts off a client that sends its headers slowly
	// (slowloris) so it cannot hold connections open for free.
	readHeaderTimeout = 5 * time.Second
	// maxEcho bounds how much of a client's input an error message quotes.
	maxEcho = 64
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
	l, written := m.announceAPI(l)
	var retry <-chan time.Time
	if !written {
		t := time.NewTicker(apiAddrRetry)
		defer t.Stop()
		retry = t.C
	}
	srv := &http.Server{
		Handler:           m.handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      drillWait + 10*time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// net/http's own complaints (malformed requests, panics) go to the
		// member's log, not to the standard logger's stderr.
		ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	m.readyOnce.Do(func() { close(m.ready) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("member: API: %w", err)
		case <-retry:
			if writeAPIAddr(m.dir, l.Addr().String()) == nil {
				m.log.Info("member: api.addr written again; the CLI finds the local API", "addr", l.Addr().String())
				retry = nil
			}
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			<-errc
			return nil
		}
	}
}

// apiAddrRetry is how often api.addr is tried again after a failed write.
const apiAddrRetry = time.Second

func writeAPIAddr(dir, addr string) error {
	return writeFile(filepath.Join(dir, fileAPIAddr), []byte(addr+"\n"), 0o644)
}

// announceAPI writes the address l listens on to api.addr, where the CLI
// finds it, and reports whether the file names it. A data directory that
// cannot take the file (a member restarted while its disk is still full)
// does not stop the member: the API serves all the same. If the file left
// by the last run names an address of the same host and the API may take
// any port, l moves to that address, so the file is right as it stands;
// otherwise the stale file is removed (the CLI would send the token to
// whatever listens there now) and serveAPI writes it again once it can.
func (m *Member) announceAPI(l net.Listener) (net.Listener, bool) {
	addr := l.Addr().String()
	path := filepath.Join(m.dir, fileAPIAddr)
	err := writeAPIAddr(m.dir, addr)
	if err == nil {
		return l, true
	}
	old := ""
	if b, rerr := os.ReadFile(path); rerr == nil {
		old = strings.TrimSpace(string(b))
	}
	if old == addr {
		return l, true
	}
	if reusablePort(m.api, old) {
		if l2, lerr := net.Listen("tcp", old); lerr == nil {
			l.Close()
			m.log.Warn("member: cannot write api.addr; the local API listens again on the address it names from the last run. Free space in the data directory",
				"addr", old, "err", err)
			return l2, true
		}
	}
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		m.log.Warn("member: cannot remove a stale api.addr", "err", rerr)
	}
	m.log.Warn("member: cannot write api.addr, so the CLI cannot find the local API until it is written (tried again every second). Free space in the data directory; "+
		"meanwhile the API answers at addr with the token in api.token, and 'phalanx up --api ADDR' keeps its address fixed across restarts",
		"addr", addr, "err", err)
	return l, false
}

// reusablePort reports whether old, an address the API listened on
// before, may serve where the configured listen address asks for any port
// of the same host.
func reusablePort(listen, old string) bool {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port != "0" || old == "" {
		return false
	}
	oldHost, _, err := net.SplitHostPort(old)
	return err == nil && oldHost == host
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
	mux.HandleFunc("GET /v1/events", m.limitStreams(m.getEvents, make(chan struct{}, maxEventStreams)))
	mux.HandleFunc("POST /v1/imported", m.postImported) // imported.go: decisions from fail2ban or CrowdSec
	mux.Handle("GET /metrics", m.metricsHandler())
	m.adminRoutes(mux) // admin.go: expel, key rotation
	authed := m.auth(checkRequest(mux))
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
// A missing or wrong token is 401 (RFC 6750), a write with the read-only
// token 403. Neither answer, nor the log, repeats what the client sent.
func (m *Member) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + m.token)
	var wantRO []byte
	if m.roToken != "" {
		wantRO = []byte("Bearer " + m.roToken)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="phalanx"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"missing Authorization: Bearer <token>: the admin token is in the data directory's api.token, the read-only one in api.readonly (phalanx api token --data DIR [--read-only])"})
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
			w.Header().Set("WWW-Authenticate", `Bearer realm="phalanx", error="invalid_token"`)
			msg := "wrong token: use the admin token in the data directory's api.token or the read-only one in api.readonly (phalanx api token --data DIR [--read-only]); a re-initialised data directory has new tokens"
			if !strings.HasPrefix(h, "Bearer ") {
				msg = "Authorization must be Bearer <token>: " + strings.TrimPrefix(msg, "wrong token: ")
			}
			writeJSON(w, http.StatusUnauthorized, apiError{msg})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// routeSpec is what a route accepts besides its method and path.
type routeSpec struct {
	params []string // query parameters; any other is refused
	body   bool     // a JSON body; routes without one refuse a body
}

// routeSpecs are the checks checkRequest makes per mux pattern. A pattern
// missing here (added by another file, or /metrics, whose scraper may add
// its own parameters) is passed through unchecked.
var routeSpecs = map[string]routeSpec{
	"GET /v1/health":       {},
	"GET /v1/decisions":    {params: []string{"value", "type", "origin", "scenario", "limit"}},
	"POST /v1/decisions":   {body: true},
	"DELETE /v1/decisions": {params: []string{"value", "reason"}},
	"GET /v1/members":      {},
	"GET /v1/charter":      {},
	"POST /v1/ceasefire":   {body: true},
	"DELETE /v1/ceasefire": {params: []string{"id"}},
	"POST /v1/drill":       {},
	"GET /v1/events":       {},
	// Routes other files add to the mux (admin.go, imported.go).
	"POST /v1/expel":        {body: true},
	"POST /v1/key-rotation": {},
	"POST /v1/imported":     {body: true},
}

// checkRequest answers what mux would answer in plain text (unknown path,
// wrong method) in JSON instead, and refuses, before the handler runs,
// query parameters a route does not take, a parameter given twice (which
// of the two wins is not worth guessing; a typo like ?vaule= must not be
// ignored silently) and a body on a route that takes none.
func checkRequest(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" {
			rec := &headerRecorder{header: http.Header{}}
			mux.ServeHTTP(rec, r)
			switch rec.status {
			case http.StatusMethodNotAllowed:
				allow := rec.header.Get("Allow")
				w.Header().Set("Allow", allow)
				writeJSON(w, rec.status, apiError{fmt.Sprintf("method %s not allowed on %s: use %s (see docs/api/openapi.yaml)", echo(r.Method), echo(r.URL.Path), allow)})
			case http.StatusNotFound:
				writeJSON(w, rec.status, apiError{fmt.Sprintf("no route %s: the API's routes are under /v1/ (see docs/api/openapi.yaml)", echo(r.URL.Path))})
			default:
				mux.ServeHTTP(w, r) // a redirect to the cleaned path
			}
			return
		}
		spec, ok := routeSpecs[pattern]
		if !ok {
			mux.ServeHTTP(w, r)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			badRequest(w, "malformed query string: %s", echo(err.Error()))
			return
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range q {
				if !yield(k) {
					return
				}
			}
		}) {
			switch {
			case !slices.Contains(spec.params, k) && len(spec.params) == 0:
				badRequest(w, "query parameter %s: %s takes none", echo(k), pattern)
				return
			case !slices.Contains(spec.params, k):
				badRequest(w, "unknown query parameter %s: %s takes %s", echo(k), pattern, strings.Join(spec.params, ", "))
				return
			case len(q[k]) > 1:
				badRequest(w, "query parameter %s given %d times: give it once", echo(k), len(q[k]))
				return
			}
		}
		if !spec.body && r.Body != nil && r.Body != http.NoBody {
			var one [1]byte
			n, err := io.ReadFull(r.Body, one[:])
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				writeJSON(w, http.StatusRequestEntityTooLarge, apiError{"body larger than 1 MiB, and this route takes none"})
				return
			}
			if n > 0 {
				badRequest(w, "%s takes no body: send the request without one", pattern)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// headerRecorder learns the status and headers of mux's own plain-text
// answers (404, 405) so checkRequest can answer them in JSON.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header { return h.header }
func (h *headerRecorder) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}
func (h *headerRecorder) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return len(b), nil
}

// limitStreams refuses a stream beyond the capacity of slots with 503.
func (m *Member) limitStreams(next http.HandlerFunc, slots chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			w.Header().Set("Retry-After", "10")
			writeJSON(w, http.StatusServiceUnavailable, apiError{fmt.Sprintf(
				"too many event streams open (%d): close some (each dashboard tab holds one) and retry", cap(slots))})
			return
		}
		next(w, r)
	}
}

// echo quotes s for an error message, cut to maxEcho bytes: an error must
// say what was wrong without echoing a megabyte back.
func echo(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxEcho]) + fmt.Sprintf("… (%d bytes)", len(s))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, format string, a ...any) {
	writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf(format, a...)})
}

// decodeBody decodes r's JSON body into v, a pointer to a struct,
// refusing unknown fields and trailing data, and answers 400 or 413 with
// what to send instead when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	br := bufio.NewReader(r.Body)
	dec := json.NewDecoder(br)
	dec.DisallowUnknownFields()
	var err error
	// One JSON object: null, an array or a number would decode into the
	// struct as nothing at all, and a request that says nothing is a
	// mistake, not a request for the defaults.
	if b, perr := peekNonSpace(br); perr != nil {
		err = perr
	} else if b != '{' {
		err = errors.New("not a JSON object")
	} else {
		err = dec.Decode(v)
	}
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		// Anything after the value other than white space.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	fields := jsonFields(v)
	var (
		mb   *http.MaxBytesError
		typ  *json.UnmarshalTypeError
		syn  *json.SyntaxError
		hint = "send a JSON object with " + strings.Join(fields, ", ")
	)
	switch {
	case errors.As(err, &mb):
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{"body larger than 1 MiB: send less (reasons are at most 1 KiB)"})
	case errors.Is(err, io.EOF):
		badRequest(w, "empty body: %s", hint)
	case errors.As(err, &typ) && typ.Field != "":
		badRequest(w, "field %s: a JSON %s where a %s belongs: %s", echo(typ.Field), typ.Value, typ.Type, hint)
	case errors.As(err, &typ):
		badRequest(w, "body is a JSON %s: %s", typ.Value, hint)
	case errors.As(err, &syn):
		badRequest(w, "malformed JSON body at byte %d: %s", syn.Offset, hint)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		badRequest(w, "unknown field %s: %s", echo(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)), hint)
	default:
		badRequest(w, "malformed JSON body (%s): %s", echo(err.Error()), hint)
	}
	return false
}

// peekNonSpace returns the first byte after JSON white space, unread.
func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			br.ReadByte()
			continue
		}
		return b[0], nil
	}
}

// jsonFields lists the JSON names of the struct v points to.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
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

// decisionFilter is GET /v1/decisions' query: every given field must match.
type decisionFilter struct {
	value    netip.Prefix // decisions overlapping it
	typ      phalanx.DecisionType
	origin   phalanx.Origin
	scenario string
	limit    int
}

func parseDecisionFilter(q url.Values) (decisionFilter, error) {
	var f decisionFilter
	if v := q.Get("value"); v != "" {
		p, err := phalanx.ParsePrefixOrAddr(v)
		if err != nil {
			return f, fmt.Errorf("value %s: give an IP address (192.0.2.7) or a CIDR range (198.51.100.0/24)", echo(v))
		}
		f.value = p
	}
	if v := q.Get("type"); v != "" {
		t, err := phalanx.ParseDecisionType(v)
		if err != nil {
			return f, fmt.Errorf("type %s: use ban, captcha or throttle", echo(v))
		}
		f.typ = t
	}
	if v := q.Get("origin"); v != "" {
		if len(v) > maxScenario {
			return f, fmt.Errorf("origin %s: at most %d bytes (local, alliance, manual, import:…)", echo(v), maxScenario)
		}
		f.origin = phalanx.Origin(v)
	}
	if v := q.Get("scenario"); v != "" {
		if len(v) > maxScenario {
			return f, fmt.Errorf("scenario %s: at most %d bytes", echo(v), maxScenario)
		}
		f.scenario = v
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return f, fmt.Errorf("limit %s: give a whole number from 1 to %d", echo(v), maxListLimit)
		}
		f.limit = n
	}
	return f, nil
}

func (f decisionFilter) match(d phalanx.Decision) bool {
	return (!f.value.IsValid() || f.value.Overlaps(d.Value)) &&
		(f.typ == "" || d.Type == f.typ) &&
		(f.origin == "" || d.Origin == f.origin) &&
		(f.scenario == "" || d.Scenario == f.scenario)
}

func (m *Member) getDecisions(w http.ResponseWriter, r *http.Request) {
	f, err := parseDecisionFilter(r.URL.Query())
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	// The list, filter and limit come from the set, which needs no
	// member's lock; only the reporters of the decisions answered are
	// looked up in the fold, a slice at a time under the lock, so that
	// listing a million decisions does not hold up the ledger fold.
	list := m.ds.List()
	page := list[:0]
	for _, d := range list {
		if f.limit > 0 && len(page) == f.limit {
			break
		}
		if f.match(d) {
			page = append(page, d)
		}
	}
	reporters := m.reporters(page, m.clock.Now())
	out := make([]DecisionView, len(page))
	for i, d := range page {
		out[i] = DecisionView{
			Value: d.ValueString(), Scope: d.Scope(), Type: d.Type, Scenario: d.Scenario, Origin: d.Origin,
			Reporters: reporters[i], Duration: d.Duration.String(), FirstSeen: d.FirstSeen,
			LastSeen: d.LastSeen, Until: d.Until(), Events: d.Events, Evidence: d.Evidence,
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// reporters returns, for each of ds, the reporters of the fold's decision
// in force at now on its value (none if the fold has no such decision).
func (m *Member) reporters(ds []phalanx.Decision, now time.Time) [][]ledger.MemberID {
	out := make([][]ledger.MemberID, len(ds))
	for start := 0; start < len(ds); start += reconcileSlice {
		m.mu.Lock()
		for i := start; i < min(len(ds), start+reconcileSlice); i++ {
			if d, ok := m.fold.InForce(ds[i].Value, now); ok {
				// InForce does not copy, and the fold may change them
				// once the lock is let go.
				out[i] = slices.Clone(d.Reporters)
			}
		}
		m.mu.Unlock()
	}
	return out
}

func (m *Member) postDecision(w http.ResponseWriter, r *http.Request) {
	var req DecisionRequest
	if !decodeBody(w, r, &req) {
		return
	}
	p, err := phalanx.ParsePrefixOrAddr(req.Value)
	if err != nil {
		badRequest(w, "value %s: give an IP address (192.0.2.7, 2001:db8::7) or a CIDR range (198.51.100.0/24)", echo(req.Value))
		return
	}
	typ := phalanx.Ban
	if req.Type != "" {
		if typ, err = phalanx.ParseDecisionType(req.Type); err != nil {
			badRequest(w, "type %s: use ban (the default), captcha or throttle", echo(req.Type))
			return
		}
	}
	dur := defaultDuration
	if req.Duration != "" {
		if dur, err = time.ParseDuration(req.Duration); err != nil || dur <= 0 || dur > maxDecisionDuration {
			badRequest(w, "duration %s: give a positive Go duration of at most 720h (30 days, the alliance's longest decision), such as 4h or 30m", echo(req.Duration))
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
	v := r.URL.Query().Get("value")
	if v == "" {
		badRequest(w, "value: give the address or range to lift, e.g. ?value=192.0.2.7")
		return
	}
	p, err := phalanx.ParsePrefixOrAddr(v)
	if err != nil {
		badRequest(w, "value %s: give an IP address (192.0.2.7) or a CIDR range (198.51.100.0/24)", echo(v))
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
	if err != nil || dur <= 0 || dur > maxCeasefireFor {
		badRequest(w, "for %s: give a positive Go duration of at most 24h (a ceasefire is time-boxed), such as 30m", echo(req.For))
		return
	}
	if len(req.Scenario) > maxScenario {
		badRequest(w, "scenario: at most %d bytes; leave it empty for every scenario", maxScenario)
		return
	}
	var scope netip.Prefix
	if req.Scope != "" {
		if scope, err = phalanx.ParsePrefixOrAddr(req.Scope); err != nil {
			badRequest(w, "scope %s: give an IP address or a CIDR range, or leave it empty for every address", echo(req.Scope))
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
		badRequest(w, "id: give the ceasefire's id, e.g. ?id=0123456789abcdef (phalanx ceasefire list, or the dashboard)")
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
