// Package bouncerapi serves the part of CrowdSec's local API that bouncers
// use (GET/HEAD /v1/decisions/stream and /v1/decisions), from phalanx's
// decision set, so that existing CrowdSec bouncers — crowdsec-firewall-
// bouncer, the nginx and Traefik bouncers — enforce phalanx's decisions
// unchanged. It also keeps their API keys (Keys), stored hashed.
//
// The wire format follows CrowdSec's pkg/models/localapi_swagger.yaml and
// pkg/apiserver/controllers/v1/decisions.go: decisions carry id, origin,
// type, scope ("Ip" or "Range"), value, duration (a Go duration until
// expiry), scenario, and until; empty lists are null.
package bouncerapi

import (
	"bufio"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
)

const (
	// maxCursors bounds the stream cursors kept: one per (bouncer, client
	// address), each holding what that bouncer was last sent. Only key
	// holders make cursors; past the bound the least recently used goes,
	// and its bouncer's next pull is answered as a startup pull.
	maxCursors = 64
	// maxInFlight bounds concurrent requests doing work: a startup dump
	// of a large set costs memory and CPU, and bouncers retry.
	maxInFlight = 8
	// requestTimeout bounds a request, however slow the client reads.
	requestTimeout = 30 * time.Second
)

// Server answers bouncers from a decision set.
type Server struct {
	ds   *decisions.Set
	keys *Keys
	log  *slog.Logger
	now  func() time.Time // the set's clock in tests

	sem chan struct{}

	idMu   sync.Mutex
	ids    map[idKey]int64
	nextID int64

	curMu   sync.Mutex
	cursors map[cursorKey]*list.Element // of *cursor
	lru     list.List
}

type idKey struct {
	value netip.Prefix
	typ   phalanx.DecisionType
}

type cursorKey struct {
	bouncer string
	addr    netip.Addr
}

// cursor is what one bouncer has been sent: the stream answers later
// pulls with the difference between this and the set.
type cursor struct {
	key  cursorKey
	mu   sync.Mutex // one pull at a time per cursor
	sent map[netip.Prefix]sent
}

type sent struct {
	id int64
	d  phalanx.Decision
}

// New returns a server for ds, authenticating bouncers with keys.
func New(ds *decisions.Set, keys *Keys, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		ds: ds, keys: keys, log: log, now: time.Now,
		sem:     make(chan struct{}, maxInFlight),
		ids:     make(map[idKey]int64),
		cursors: make(map[cursorKey]*list.Element),
	}
}

// Handler returns the API's handler, to be mounted at / on the member's
// local API. The http.Server should set ReadHeaderTimeout; each request
// here gets its own deadline.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/decisions/stream", s.auth(s.stream))
	mux.HandleFunc("GET /v1/decisions", s.auth(s.list))
	// GET patterns also match HEAD. Everything else needs a key too and
	// is answered in JSON, as CrowdSec's LAPI answers: a caller without a
	// key learns nothing about which paths exist.
	mux.HandleFunc("/", s.auth(notRoute))
	return mux
}

// notRoute answers a keyed request for a path or method bouncers do not
// use.
func notRoute(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/decisions", "/v1/decisions/stream":
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed: bouncers use GET "+r.URL.Path)
	default:
		writeError(w, http.StatusNotFound, "not a bouncer route: bouncers use GET /v1/decisions and GET /v1/decisions/stream")
	}
}

type errorBody struct {
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(errorBody{Message: msg})
}

type ctxBouncer struct{}

// auth checks X-Api-Key and bounds the work in flight. A wrong key gets
// CrowdSec's 403 answer, which the bouncers report as a bad key.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := s.keys.check(r.Header.Get("X-Api-Key"))
		if !ok {
			s.log.Debug("bouncer API: access forbidden", "remote", r.RemoteAddr, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, "access forbidden")
			return
		}
		select {
		case s.sem <- struct{}{}:
			defer func() { <-s.sem }()
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "too many requests in flight, retry")
			return
		}
		rc := http.NewResponseController(w)
		deadline := time.Now().Add(requestTimeout)
		_ = rc.SetWriteDeadline(deadline) // unsupported by some writers (tests): the context still bounds the work
		ctx, cancel := context.WithDeadline(r.Context(), deadline)
		defer cancel()
		next(w, r.WithContext(context.WithValue(ctx, ctxBouncer{}, name)))
	}
}

func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// id returns the API id of a decision: stable while a decision of that
// value and type is in force, new when one comes back or changes type, as
// CrowdSec's ids are per decision row.
func (s *Server) id(d *phalanx.Decision) int64 {
	k := idKey{d.Value, d.Type}
	if id, ok := s.ids[k]; ok {
		return id
	}
	s.nextID++
	s.ids[k] = s.nextID
	return s.nextID
}

// snapshot lists the decisions in force with their ids, and forgets the
// ids of decisions no longer in force.
func (s *Server) snapshot() ([]phalanx.Decision, []int64) {
	ds := s.ds.List()
	ids := make([]int64, len(ds))
	s.idMu.Lock()
	defer s.idMu.Unlock()
	for i := range ds {
		ids[i] = s.id(&ds[i])
	}
	if len(s.ids) > len(ds) {
		live := make(map[idKey]struct{}, len(ds))
		for i := range ds {
			live[idKey{ds[i].Value, ds[i].Type}] = struct{}{}
		}
		for k := range s.ids {
			if _, ok := live[k]; !ok {
				delete(s.ids, k)
			}
		}
	}
	return ds, ids
}

// cursorFor returns the cursor of (bouncer, addr), creating it (and
// evicting the least recently used) if needed; fresh reports a new one.
func (s *Server) cursorFor(k cursorKey) (c *cursor, fresh bool) {
	s.curMu.Lock()
	defer s.curMu.Unlock()
	if e, ok := s.cursors[k]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*cursor), false
	}
	if s.lru.Len() >= maxCursors {
		old := s.lru.Back()
		s.lru.Remove(old)
		delete(s.cursors, old.Value.(*cursor).key)
	}
	c = &cursor{key: k}
	s.cursors[k] = s.lru.PushFront(c)
	return c, true
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	q, err := parseStreamQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if r.Method == http.MethodHead {
		// As CrowdSec: HEAD checks the key and the query and moves no
		// cursor, or the next GET would miss what HEAD "delivered".
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return
	}
	name := r.Context().Value(ctxBouncer{}).(string)
	addr := clientAddr(r)
	c, fresh := s.cursorFor(cursorKey{name, addr})
	c.mu.Lock()
	defer c.mu.Unlock()

	ds, ids := s.snapshot()
	now := s.now()
	var added, deleted []sent
	if q.startup || fresh {
		added = make([]sent, 0, len(ds)) // a full dump: grow once, not log(n) times
	}
	next := make(map[netip.Prefix]sent, len(ds))
	for i := range ds {
		d := &ds[i]
		if !q.match(d) {
			continue
		}
		e := sent{ids[i], *d}
		next[d.Value] = e
		if q.startup || fresh {
			added = append(added, e)
			continue
		}
		old, ok := c.sent[d.Value]
		switch {
		case !ok:
			added = append(added, e)
		case old.d.Type != d.Type:
			// A different remedy is a different decision: lift the old
			// one so a bouncer with per-type actions drops it.
			deleted = append(deleted, old)
			added = append(added, e)
		case !old.d.Until().Equal(d.Until()):
			added = append(added, e) // extended: the bouncer renews its timeout
		}
	}
	if !q.startup && !fresh {
		for v, old := range c.sent {
			if _, ok := next[v]; !ok {
				deleted = append(deleted, old)
			}
		}
	}

	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 64<<10)
	buf := make([]byte, 0, 512)
	buf = append(buf, `{"new":`...)
	buf, err = s.writeDecisions(bw, buf, added, now, false)
	if err == nil {
		buf = append(buf, `,"deleted":`...)
		buf, err = s.writeDecisions(bw, buf, deleted, now, true)
	}
	if err == nil {
		buf = append(buf, "}\n"...)
		_, err = bw.Write(buf)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = r.Context().Err()
	}
	if err != nil {
		// The cursor stays where it was: the bouncer gets it all again.
		s.log.Warn("bouncer API: stream not delivered", "bouncer", name, "remote", addr, "err", err)
		return
	}
	c.sent = next
	if err := s.keys.pulled(name, addr); err != nil {
		s.log.Warn("bouncer API: recording last pull", "bouncer", name, "err", err)
	}
	s.log.Debug("bouncer API: stream", "bouncer", name, "remote", addr,
		"startup", q.startup || fresh, "new", len(added), "deleted", len(deleted))
}

// writeDecisions appends a JSON array of decisions (null if none) to buf,
// flushing buf to w as it grows, and returns what is left of buf.
func (s *Server) writeDecisions(w *bufio.Writer, buf []byte, es []sent, now time.Time, gone bool) ([]byte, error) {
	if len(es) == 0 {
		return append(buf, "null"...), nil
	}
	buf = append(buf, '[')
	for i := range es {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendDecision(buf, es[i].id, &es[i].d, now, gone)
		if len(buf) >= 32<<10 {
			if _, err := w.Write(buf); err != nil {
				return buf[:0], err
			}
			buf = buf[:0]
		}
	}
	return append(buf, ']'), nil
}

// appendDecision writes one decision as the swagger's Decision. For a
// decision no longer in force (gone), duration and until say it ended
// now, as CrowdSec's are for a decision it deleted or that expired: some
// bouncers skip a deletion whose until is still ahead.
func appendDecision(b []byte, id int64, d *phalanx.Decision, now time.Time, gone bool) []byte {
	until := d.Until()
	if gone && until.After(now) {
		until = now
	}
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"origin":`...)
	b = appendString(b, crowdsecOrigin(d.Origin))
	b = append(b, `,"type":`...)
	b = appendString(b, string(d.Type))
	b = append(b, `,"scope":`...)
	if d.Value.IsSingleIP() {
		b = append(b, `"Ip","value":"`...)
		b = d.Value.Addr().AppendTo(b)
	} else {
		b = append(b, `"Range","value":"`...)
		b = d.Value.AppendTo(b)
	}
	b = append(b, `","duration":"`...)
	b = append(b, until.Sub(now).String()...)
	b = append(b, `","scenario":`...)
	b = appendString(b, d.Scenario)
	b = append(b, `,"until":"`...)
	b = until.UTC().AppendFormat(b, time.RFC3339)
	return append(b, `"}`...)
}

// appendString appends s as a JSON string. Scenario names are short and
// plain; the rare one needing escapes goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	f, err := parseListQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ds, ids := s.snapshot()
	now := s.now()
	out := make([]sent, 0, 4)
	for i := range ds {
		if f.match(&ds[i]) {
			out = append(out, sent{ids[i], ds[i]})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	bw := bufio.NewWriterSize(w, 16<<10)
	buf, err := s.writeDecisions(bw, nil, out, now, false)
	if err == nil {
		_, err = bw.Write(append(buf, '\n'))
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Debug("bouncer API: list not delivered", "err", err)
	}
}
