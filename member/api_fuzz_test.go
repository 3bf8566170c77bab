package member

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
)

// fuzzRoutes are the write routes whose bodies and query parameters come
// from whoever holds a token (a script, a dashboard tab, a CrowdSec-style
// integration), plus the reads that take no input. The drill (which waits
// for acknowledgements) and the event stream are left out: they take no
// input to decode.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodPost, "/v1/decisions"},
	{http.MethodDelete, "/v1/decisions"},
	{http.MethodPost, "/v1/ceasefire"},
	{http.MethodDelete, "/v1/ceasefire"},
	{http.MethodGet, "/v1/decisions"},
	{http.MethodGet, "/v1/health"},
}

// FuzzAPIRequest sends arbitrary bodies and query strings to a real
// member's API handler (a real ledger on an embedded NATS server behind
// it). Whatever arrives, the answer is a JSON document with a 2xx for a
// well-formed request or a 4xx naming the problem, never a 5xx from the
// decoding, and a request is accepted only if it decodes strictly to a
// valid one.
func FuzzAPIRequest(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "m")
	if _, err := Init(dir, "fuzz", "127.0.0.1:0", nil, time.Now()); err != nil {
		f.Fatal(err)
	}
	m, err := Open(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	m.SetAPIListen("127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(deadline):
			f.Error("member did not stop")
		}
	})
	select {
	case <-m.ready:
	case err := <-done:
		f.Fatalf("member stopped before it was ready: %v", err)
	case <-time.After(deadline):
		f.Fatal("member not ready")
	}
	h := m.handler()

	for _, s := range []struct {
		route int
		query string
		body  string
	}{
		{0, "", `{"value":"203.0.113.9","reason":"seen scanning"}`},
		{0, "", `{"value":"2001:db8::/48","type":"captcha","duration":"30m","reason":"x"}`},
		{0, "", `{"value":"203.0.113.9","reason":"x","extra":1}`},
		{0, "", `{"value":"203.0.113.9","duration":"-1h","reason":"x"}`},
		{0, "", `{"value":"::ffff:1.2.3.4","duration":"2562047h","reason":"x"}`},
		{0, "", `{"value":"1.2.3.4/0","reason":"ban the world"}`},
		{0, "", `{"value":"203.0.113.9","reason":"\u202e\u001b[2J"}` + "\n{}"},
		{0, "", `[`},
		{0, "", "\xff\xfe"},
		{1, "value=203.0.113.9&reason=done", ""},
		{1, "value=%zz", ""},
		{1, "value=10.0.0.0/8;reason=a", ""},
		{2, "", `{"for":"30m","reason":"false positives"}`},
		{2, "", `{"for":"1ns","scope":"192.0.2.0/24","scenario":"ssh-bf","reason":"x"}`},
		{2, "", `{"for":"","reason":"x"}`},
		{3, "id=abcdef0123456789", ""},
		{3, "id=" + strings.Repeat("a", 65), ""},
		{4, "", ""},
		{5, "", ""},
	} {
		f.Add(uint8(s.route), s.query, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, query string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		target := rt.path
		if query != "" {
			target += "?" + url.PathEscape(query)
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Skip() // not a request line an HTTP server would hand over
		}
		r := httptest.NewRequestWithContext(t.Context(), rt.method, u.RequestURI(), bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+m.token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s %q: status %d: %s", rt.method, u.RequestURI(), body, w.Code, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s %q: answer is not JSON: %q", rt.method, u.RequestURI(), body, w.Body)
		}
		if w.Code >= 400 {
			var e apiError
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || strings.TrimSpace(e.Error) == "" {
				t.Fatalf("%s %s: error %d without a message: %q", rt.method, u.RequestURI(), w.Code, w.Body)
			}
			return
		}
		if w.Code != http.StatusAccepted {
			return
		}
		// Accepted: the request must have been a valid one.
		switch rt.path + " " + rt.method {
		case "/v1/decisions POST":
			var req DecisionRequest
			if !strictJSON(body, &req) {
				t.Fatalf("accepted a body that does not decode strictly: %q", body)
			}
			if _, err := phalanx.ParsePrefixOrAddr(req.Value); err != nil || strings.TrimSpace(req.Reason) == "" || len(req.Reason) > maxReason {
				t.Fatalf("accepted an invalid decision: %+v", req)
			}
			if req.Duration != "" {
				if d, err := time.ParseDuration(req.Duration); err != nil || d <= 0 {
					t.Fatalf("accepted duration %q", req.Duration)
				}
			}
		case "/v1/ceasefire POST":
			var req CeasefireRequest
			if !strictJSON(body, &req) {
				t.Fatalf("accepted a body that does not decode strictly: %q", body)
			}
			if d, err := time.ParseDuration(req.For); err != nil || d <= 0 || strings.TrimSpace(req.Reason) == "" {
				t.Fatalf("accepted an invalid ceasefire: %+v", req)
			}
		case "/v1/decisions DELETE":
			if _, err := phalanx.ParsePrefixOrAddr(r.URL.Query().Get("value")); err != nil {
				t.Fatalf("lifted an invalid value: %q", r.URL.RawQuery)
			}
		case "/v1/ceasefire DELETE":
			if id := r.URL.Query().Get("id"); id == "" || len(id) > 64 {
				t.Fatalf("ended ceasefire %q", id)
			}
		}
		var p Published
		if json.Unmarshal(w.Body.Bytes(), &p) != nil || p.ID == "" || p.Seq == 0 {
			t.Fatalf("accepted without a ledger position: %q", w.Body)
		}
	})
}

// strictJSON decodes one JSON value with no unknown fields and nothing
// after it: the API's own rule, restated independently.
func strictJSON(b []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil {
		return false
	}
	return !dec.More()
}
