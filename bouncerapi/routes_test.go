package bouncerapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestEveryPathNeedsAKey: paths and methods bouncers do not use answer 403
// without a valid key (nothing learnt about what exists) and a JSON 404 or
// 405 with one.
func TestEveryPathNeedsAKey(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", http.StatusNotFound},
		{"GET", "/v1/health", http.StatusNotFound},
		{"GET", "/v1/watchers/login", http.StatusNotFound},
		{"POST", "/v1/decisions", http.StatusMethodNotAllowed},
		{"DELETE", "/v1/decisions", http.StatusMethodNotAllowed},
		{"PUT", "/v1/decisions/stream", http.StatusMethodNotAllowed},
	} {
		for _, key := range []string{"", "wrong", f.key + "x"} {
			if w := f.do(t, tc.method, tc.path, key, ""); w.Code != http.StatusForbidden {
				t.Errorf("%s %s with key %q: %d, want 403", tc.method, tc.path, key, w.Code)
			}
		}
		w := f.do(t, tc.method, tc.path, f.key, "")
		if w.Code != tc.want || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") || !strings.Contains(w.Body.String(), `"message"`) {
			t.Errorf("%s %s with the key: %d %q %s, want %d in JSON", tc.method, tc.path, w.Code, w.Header().Get("Content-Type"), w.Body, tc.want)
		}
		if strings.Contains(w.Body.String(), f.key) {
			t.Errorf("%s %s: the answer repeats the key", tc.method, tc.path)
		}
	}
}
