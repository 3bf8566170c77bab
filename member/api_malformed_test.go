package member

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// apiAnswer is one response as the malformed-input tests see it.
type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

// send makes one request with an explicit Authorization header value
// (empty: none) and reads the whole answer. Event streams are asked for
// as a snapshot (no Accept), so every answer ends.
func send(t *testing.T, method, url, auth string, body []byte) apiAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	return apiAnswer{resp.StatusCode, resp.Header, b}
}

// wantError checks an error answer: the status, JSON with a non-empty
// message that is short (it quotes at most a little of the input) and
// repeats none of the secrets.
func wantError(t *testing.T, a apiAnswer, status int, secrets ...string) {
	t.Helper()
	if a.status != status {
		t.Errorf("status %d, want %d: %.300s", a.status, status, a.body)
		return
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON: %.300s", ct, a.body)
	}
	var e apiError
	if err := json.Unmarshal(a.body, &e); err != nil || strings.TrimSpace(e.Error) == "" {
		t.Errorf("not a JSON error with a message: %v: %.300s", err, a.body)
	}
	if len(a.body) > 1024 {
		t.Errorf("error answer of %d bytes: it must not echo the input back", len(a.body))
	}
	for _, s := range secrets {
		if s != "" && bytes.Contains(a.body, []byte(s)) {
			t.Errorf("error answer repeats a secret: %s", a.body)
		}
	}
}

// TestAPIMalformed sends every route of docs/api/openapi.yaml the requests a
// confused or hostile client sends — no token, a wrong one, the read-only
// token on a write, a method the route does not take, query parameters it
// does not take or takes once, garbage and huge values, bodies that are not
// JSON, of the wrong shape, too large or empty — against a running member,
// and checks each gets the right status and a JSON error that says what to
// do instead.
func TestAPIMalformed(t *testing.T) {
	doc := loadOpenAPI(t)
	dir := filepath.Join(t.TempDir(), "m")
	if _, err := Init(dir, "malformed", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	start(t, dir)
	c, err := Client(dir)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := APIToken(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	admin, readOnly := "Bearer "+c.token, "Bearer "+ro
	secrets := []string{c.token, ro}
	// A wrong token that differs from the right one in one character:
	// the answer must not reveal which, nor repeat it.
	wrong := c.token[:len(c.token)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", c.token[len(c.token)-1])+1)%16])
	secrets = append(secrets, wrong)

	for _, route := range doc.routes() {
		method, path, _ := strings.Cut(route, " ")
		op := doc.Paths[path][strings.ToLower(method)]
		u := c.base + path
		t.Run(route+"/auth", func(t *testing.T) {
			for _, tc := range []struct{ name, auth string }{
				{"no token", ""},
				{"wrong token", "Bearer " + wrong},
				{"empty bearer", "Bearer "},
				{"not bearer", "Basic " + c.token},
				{"token without scheme", c.token},
				{"huge header", "Bearer " + strings.Repeat("x", 32<<10)},
			} {
				a := send(t, method, u, tc.auth, nil)
				wantError(t, a, http.StatusUnauthorized, secrets...)
				if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: WWW-Authenticate %q", tc.name, a.header.Get("WWW-Authenticate"))
				}
			}
			if method != http.MethodGet {
				wantError(t, send(t, method, u, readOnly, []byte(`{}`)), http.StatusForbidden, secrets...)
			}
		})
		t.Run(route+"/method", func(t *testing.T) {
			for _, m := range []string{http.MethodPatch, http.MethodPut, "BREW"} {
				a := send(t, m, u, admin, nil)
				wantError(t, a, http.StatusMethodNotAllowed, secrets...)
				if allow := a.header.Get("Allow"); !strings.Contains(allow, method) {
					t.Errorf("%s: Allow %q lacks %s", m, allow, method)
				}
			}
		})
		if path == "/metrics" {
			continue // the scraper's parameters are its own
		}
		spec, ok := routeSpecs[route]
		if !ok {
			t.Errorf("%s is documented but has no routeSpec in api.go: say which query parameters and whether a body it takes", route)
			continue
		}
		var documented []string
		for _, p := range op.Parameters {
			documented = append(documented, p.Name)
		}
		slices.Sort(documented)
		if want := slices.Sorted(slices.Values(spec.params)); !slices.Equal(documented, want) {
			t.Errorf("%s: documented query parameters %v, routeSpec %v", route, documented, want)
		}
		if (op.RequestBody != nil) != spec.body {
			t.Errorf("%s: documented body %v, routeSpec body %v", route, op.RequestBody != nil, spec.body)
		}
		t.Run(route+"/query", func(t *testing.T) {
			bad := []string{"zzz=1", "%zz", "a=1;b=2", strings.Repeat("k", 10<<10) + "=1"}
			for _, p := range spec.params {
				bad = append(bad, p+"=1&"+p+"=2")
			}
			for _, q := range bad {
				wantError(t, send(t, method, u+"?"+q, admin, validBody(route)), http.StatusBadRequest, secrets...)
			}
			// Beyond the 64 KiB header limit net/http itself answers, before
			// any handler (in plain text: it is not the API's answer).
			if a := send(t, method, u+"?k="+strings.Repeat("k", 100<<10), admin, validBody(route)); a.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("100 KiB query: %d, want 431", a.status)
			}
		})
		if spec.body {
			t.Run(route+"/body", func(t *testing.T) {
				for _, b := range [][]byte{
					nil, []byte(""), []byte("   "), []byte("not json"), []byte("{"), []byte(`[]`), []byte(`"x"`),
					[]byte(`null`), []byte(`42`), []byte(`{"unknown":1}`), []byte(`{"value":42,"for":true,"reason":["x"]}`),
					[]byte(`{"reason":"x"}{"reason":"y"}`), []byte(`{"reason":"x"} trailing`), []byte("\xff\xfe{}"),
				} {
					wantError(t, send(t, method, u, admin, b), http.StatusBadRequest, secrets...)
				}
				huge := append([]byte(`{"reason":"`), bytes.Repeat([]byte("x"), maxBody+1)...)
				huge = append(huge, `"}`...)
				wantError(t, send(t, method, u, admin, huge), http.StatusRequestEntityTooLarge, secrets...)
			})
		} else {
			t.Run(route+"/body", func(t *testing.T) {
				q := validQuery(route)
				wantError(t, send(t, method, u+q, admin, []byte(`{"value":"192.0.2.1"}`)), http.StatusBadRequest, secrets...)
				wantError(t, send(t, method, u+q, admin, bytes.Repeat([]byte("x"), maxBody+1)), http.StatusBadRequest, secrets...)
			})
		}
	}
}

// validBody is a body each body route accepts, so that a query test fails
// on the query alone.
func validBody(route string) []byte {
	switch route {
	case "POST /v1/decisions":
		return []byte(`{"value":"192.0.2.1","reason":"test"}`)
	case "POST /v1/ceasefire":
		return []byte(`{"for":"1m","reason":"test"}`)
	}
	return nil
}

// validQuery is a query each parameter route accepts.
func validQuery(route string) string {
	switch route {
	case "DELETE /v1/decisions":
		return "?value=192.0.2.1"
	case "DELETE /v1/ceasefire":
		return "?id=0123456789abcdef"
	}
	return ""
}

// TestAPIMalformedValues: values that parse as the right JSON type but are
// wrong — garbage, out of range, huge — each answered 400 with what to
// give instead, route by route; and the filters of GET /v1/decisions.
func TestAPIMalformedValues(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	if _, err := Init(dir, "values", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	start(t, dir)
	c, err := Client(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin := "Bearer " + c.token
	huge := strings.Repeat("9", 1<<19)
	for _, tc := range []struct {
		name, method, path, body string
		want                     string // in the message
	}{
		{"value garbage", "POST", "/v1/decisions", `{"value":"example.com","reason":"x"}`, "IP address"},
		{"value huge", "POST", "/v1/decisions", `{"value":"` + huge + `","reason":"x"}`, "IP address"},
		{"value bad cidr", "POST", "/v1/decisions", `{"value":"192.0.2.0/33","reason":"x"}`, "CIDR"},
		{"type", "POST", "/v1/decisions", `{"value":"192.0.2.1","type":"nuke","reason":"x"}`, "ban"},
		{"duration garbage", "POST", "/v1/decisions", `{"value":"192.0.2.1","duration":"soon","reason":"x"}`, "Go duration"},
		{"duration negative", "POST", "/v1/decisions", `{"value":"192.0.2.1","duration":"-1h","reason":"x"}`, "positive"},
		{"duration over the cap", "POST", "/v1/decisions", `{"value":"192.0.2.1","duration":"721h","reason":"x"}`, "720h"},
		{"duration overflow", "POST", "/v1/decisions", `{"value":"192.0.2.1","duration":"` + huge + `h","reason":"x"}`, "Go duration"},
		{"reason empty", "POST", "/v1/decisions", `{"value":"192.0.2.1","reason":"  "}`, "reason"},
		{"reason huge", "POST", "/v1/decisions", `{"value":"192.0.2.1","reason":"` + strings.Repeat("x", 2000) + `"}`, "1024"},
		{"wrong type", "POST", "/v1/decisions", `{"value":["192.0.2.1"],"reason":"x"}`, `"value"`},
		{"unknown field", "POST", "/v1/decisions", `{"value":"192.0.2.1","reason":"x","evil":1}`, `"evil"`},
		{"empty body", "POST", "/v1/decisions", ``, "empty body"},
		{"lift without value", "DELETE", "/v1/decisions", "", "value"},
		{"lift garbage", "DELETE", "/v1/decisions?value=" + url.QueryEscape("1.2.3.4.5"), "", "IP address"},
		{"lift huge reason", "DELETE", "/v1/decisions?value=192.0.2.1&reason=" + strings.Repeat("r", 2000), "", "1024"},
		{"ceasefire for garbage", "POST", "/v1/ceasefire", `{"for":"soon","reason":"x"}`, "Go duration"},
		{"ceasefire over the cap", "POST", "/v1/ceasefire", `{"for":"25h","reason":"x"}`, "24h"},
		{"ceasefire scope", "POST", "/v1/ceasefire", `{"for":"1m","scope":"everyone","reason":"x"}`, "scope"},
		{"ceasefire scenario huge", "POST", "/v1/ceasefire", `{"for":"1m","scenario":"` + strings.Repeat("s", 200) + `","reason":"x"}`, "scenario"},
		{"ceasefire no reason", "POST", "/v1/ceasefire", `{"for":"1m"}`, "reason"},
		{"end without id", "DELETE", "/v1/ceasefire", "", "id"},
		{"end huge id", "DELETE", "/v1/ceasefire?id=" + strings.Repeat("a", 65), "", "id"},
		{"filter value", "GET", "/v1/decisions?value=nope", "", "IP address"},
		{"filter type", "GET", "/v1/decisions?type=nuke", "", "ban"},
		{"filter limit zero", "GET", "/v1/decisions?limit=0", "", "limit"},
		{"filter limit huge", "GET", "/v1/decisions?limit=" + huge[:30], "", "limit"},
		{"filter limit garbage", "GET", "/v1/decisions?limit=ten", "", "limit"},
		{"filter scenario huge", "GET", "/v1/decisions?scenario=" + strings.Repeat("s", 200), "", "scenario"},
		{"filter origin huge", "GET", "/v1/decisions?origin=" + strings.Repeat("o", 200), "", "origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			a := send(t, tc.method, c.base+tc.path, admin, body)
			wantError(t, a, http.StatusBadRequest, c.token)
			var e apiError
			if json.Unmarshal(a.body, &e) == nil && !strings.Contains(e.Error, tc.want) {
				t.Errorf("message %q does not mention %q", e.Error, tc.want)
			}
		})
	}

	// The filters select; they are not just accepted.
	for _, v := range []string{"192.0.2.10", "192.0.2.11", "2001:db8::10"} {
		if _, err := c.AddDecision(t.Context(), DecisionRequest{Value: v, Duration: "1h", Reason: "filter test"}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(q string) []string {
		t.Helper()
		a := send(t, "GET", c.base+"/v1/decisions"+q, admin, nil)
		if a.status != http.StatusOK {
			t.Fatalf("GET /v1/decisions%s: %d %s", q, a.status, a.body)
		}
		var ds []DecisionView
		if err := json.Unmarshal(a.body, &ds); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.Value)
		}
		slices.Sort(out)
		return out
	}
	for end := time.Now().Add(deadline); len(list("")) < 3; {
		if time.Now().After(end) {
			t.Fatalf("decisions not in force within %v: %v", deadline, list(""))
		}
		time.Sleep(20 * time.Millisecond) // the fold applies them on its own goroutine
	}
	for q, want := range map[string][]string{
		"?value=192.0.2.0/24":                {"192.0.2.10", "192.0.2.11"},
		"?value=192.0.2.11":                  {"192.0.2.11"},
		"?value=2001:db8::/32&type=ban":      {"2001:db8::10"},
		"?type=captcha":                      nil,
		"?origin=manual&scenario=manual":     {"192.0.2.10", "192.0.2.11", "2001:db8::10"},
		"?origin=local":                      nil,
		"?scenario=ssh-bf":                   nil,
		"?limit=1&value=" + "192.0.2.0%2F24": {"192.0.2.10"},
	} {
		if got := list(q); !slices.Equal(got, want) {
			t.Errorf("GET /v1/decisions%s = %v, want %v", q, got, want)
		}
	}
}

// TestAPIErrorsNameTheFix: the messages an operator reads for the common
// mistakes say what to do, not only what failed.
func TestAPIErrorsNameTheFix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	if _, err := Init(dir, "fix", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	start(t, dir)
	c, err := Client(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, auth string
		want                     []string
	}{
		{"no token", "GET", "/v1/health", "", []string{"api.token", "phalanx api token"}},
		{"wrong token", "GET", "/v1/health", "Bearer nope", []string{"api.token", "api.readonly"}},
		{"unknown path", "GET", "/v1/nope", "Bearer " + c.token, []string{"/v1/", "openapi"}},
		{"wrong method", "PUT", "/v1/health", "Bearer " + c.token, []string{"GET"}},
		{"typo in a parameter", "DELETE", "/v1/decisions?vaule=192.0.2.1", "Bearer " + c.token, []string{`"vaule"`, "value, reason"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, tc.method, c.base+tc.path, tc.auth, nil)
			var e apiError
			if err := json.Unmarshal(a.body, &e); err != nil {
				t.Fatalf("%d %s: %v", a.status, a.body, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Error, w) {
					t.Errorf("%q lacks %q", e.Error, w)
				}
			}
		})
	}
	// The Go client passes the message on, and a wrong token in the data
	// directory is not echoed by it either.
	c.token = "not-the-token-0123456789"
	_, err = c.Health(t.Context())
	if err == nil || !strings.Contains(err.Error(), "api.token") || strings.Contains(err.Error(), c.token) {
		t.Errorf("client error with a wrong token: %v", err)
	}
}
