package member

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadOnlyToken(t *testing.T) {
	d1 := filepath.Join(t.TempDir(), "founder")
	if _, err := Init(d1, "ro", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(d1, fileAPIRead))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("api.readonly after Init: %v %v", fi, err)
	}
	ro, err := APIToken(d1, true)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := APIToken(d1, false)
	if err != nil {
		t.Fatal(err)
	}
	if ro == admin || len(ro) != 64 {
		t.Fatalf("read-only token %q, admin %q", ro, admin)
	}
	start(t, d1)
	c, err := Client(d1)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != admin {
		t.Fatalf("client token %q, want the admin token", c.token)
	}
	do := func(t *testing.T, method, path, token, body string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if path == "/v1/events" {
			return resp.StatusCode, "" // a stream: the status is enough
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	reads := []string{"/v1/health", "/v1/decisions", "/v1/members", "/v1/charter", "/v1/events", "/metrics"}
	for _, path := range reads {
		t.Run("read-only GET "+path, func(t *testing.T) {
			if got, body := do(t, "GET", path, ro, ""); got != http.StatusOK {
				t.Errorf("GET %s with the read-only token: %d %s", path, got, body)
			}
		})
	}
	writes := []struct{ method, path, body string }{
		{"POST", "/v1/decisions", `{"value":"192.0.2.1","reason":"x"}`},
		{"DELETE", "/v1/decisions?value=192.0.2.1", ""},
		{"POST", "/v1/ceasefire", `{"for":"1h","reason":"x"}`},
		{"DELETE", "/v1/ceasefire?id=x", ""},
		{"POST", "/v1/drill", `{}`},
	}
	for _, w := range writes {
		t.Run("read-only "+w.method+" "+w.path, func(t *testing.T) {
			got, body := do(t, w.method, w.path, ro, w.body)
			if got != http.StatusForbidden {
				t.Fatalf("%s %s with the read-only token: %d, want 403", w.method, w.path, got)
			}
			var e apiError
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "read-only token: writes need the admin token in api.token" {
				t.Errorf("error body %q (%v)", body, err)
			}
		})
	}
	// The admin token is unchanged: it reads and writes.
	for _, path := range reads {
		if got, _ := do(t, "GET", path, admin, ""); got != http.StatusOK {
			t.Errorf("GET %s with the admin token: %d", path, got)
		}
	}
	if got, body := do(t, "POST", "/v1/decisions", admin, `{"value":"192.0.2.1","reason":"admin"}`); got != http.StatusOK && got != http.StatusCreated && got != http.StatusAccepted {
		t.Errorf("POST /v1/decisions with the admin token: %d %s", got, body)
	}
	if got, _ := do(t, "GET", "/v1/health", "nope", ""); got != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", got)
	}
}

func TestReadOnlyTokenCreatedOnOpen(t *testing.T) {
	d1 := filepath.Join(t.TempDir(), "founder")
	if _, err := Init(d1, "old", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	// A data directory from before read-only tokens.
	if err := os.Remove(filepath.Join(d1, fileAPIRead)); err != nil {
		t.Fatal(err)
	}
	if _, err := APIToken(d1, true); err == nil || !strings.Contains(err.Error(), "phalanx up") {
		t.Fatalf("APIToken of an old directory: %v", err)
	}
	m, err := Open(d1, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(d1, fileAPIRead))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("api.readonly after Open: %v %v", fi, err)
	}
	ro, err := APIToken(d1, true)
	if err != nil || ro != m.roToken || ro == m.token {
		t.Fatalf("read-only token %q (%v), member has %q", ro, err, m.roToken)
	}
}
