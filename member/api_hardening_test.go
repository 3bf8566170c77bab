package member

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/bouncerapi"
	"github.com/phalanx-defence/phalanx/ledger"
)

// TestSlowlorisCutOff: a client that opens a connection and sends its
// headers a line at a time, never finishing, is disconnected by the
// server's header timeout, while other clients are served meanwhile.
func TestSlowlorisCutOff(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "m")
	if _, err := Init(dir, "slow", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	start(t, dir)
	c, err := Client(dir)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/health HTTP/1.1\r\nHost: phalanx\r\nAuthorization: Bearer "+c.token+"\r\n"); err != nil {
		t.Fatal(err)
	}
	// closed reports whether the server has dropped the connection; the
	// short read deadline is the wait between two trickled lines.
	closed := func() bool {
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [512]byte
		_, err := conn.Read(b[:])
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}
	served := false
	end := time.Now().Add(3 * readHeaderTimeout)
	for !closed() {
		if time.Now().After(end) {
			t.Fatalf("a client trickling headers is still connected after %v (header timeout %v)", 3*readHeaderTimeout, readHeaderTimeout)
		}
		if _, err := io.WriteString(conn, "X-Slow: 1\r\n"); err != nil {
			break // the server closed it between two checks
		}
		if !served {
			// Others are served while the slow client holds its connection.
			if _, err := c.Health(t.Context()); err != nil {
				t.Fatalf("health while a slow client is connected: %v", err)
			}
			served = true
		}
	}
	if !served {
		t.Error("the slow connection was closed before the test could check that others are served")
	}
}

// TestEventStreamsBounded: the member keeps at most maxEventStreams event
// streams open; a client that tries to open hundreds more gets a 503 JSON
// answer for each, the rest of the API keeps answering, and a slot freed
// by a closed stream can be taken again.
func TestEventStreamsBounded(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "m")
	if _, err := Init(dir, "streams", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	start(t, dir)
	c, err := Client(dir)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	open := func(ctx context.Context) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, cancel := range cancels {
			cancel()
		}
	}()
	// Headers received: the stream holds its slot (taken before them).
	for i := range maxEventStreams {
		ctx, cancel := context.WithCancel(t.Context())
		cancels = append(cancels, cancel)
		resp := open(ctx)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d of %d: %d", i+1, maxEventStreams, resp.StatusCode)
		}
	}
	for i := range 200 {
		resp := open(t.Context())
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(b, []byte("too many event streams")) || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("stream %d over the bound: %d %s", maxEventStreams+i+1, resp.StatusCode, b)
		}
	}
	if _, err := c.Health(t.Context()); err != nil {
		t.Fatalf("health with every stream slot taken: %v", err)
	}
	// Free one: the server notices the closed connection and releases the
	// slot, an event on its own goroutine; poll with a deadline.
	cancels[0]()
	for end := time.Now().Add(deadline); ; {
		ctx, cancel := context.WithCancel(t.Context())
		resp := open(ctx)
		if resp.StatusCode == http.StatusOK {
			cancels = append(cancels, cancel)
			break
		}
		resp.Body.Close()
		cancel()
		if time.Now().After(end) {
			t.Fatalf("no stream slot freed %v after a client left: %d", deadline, resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLogged runs the member in dir with log, like start.
func startLogged(t *testing.T, dir string, log *slog.Logger, setup ...func(*Member)) *Member {
	t.Helper()
	m, err := Open(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(m)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(deadline):
			t.Error("member did not stop")
		}
	})
	select {
	case <-m.ready:
	case err := <-done:
		t.Fatalf("Run ended before it was ready: %v", err)
	case <-time.After(deadline):
		t.Fatal("member not ready")
	}
	return m
}

// TestNoSecretsInLogs runs two members (the second admitted by invitation)
// and a bouncer API with a debug-level log capturing everything, exercises
// the API with right, wrong and near-miss tokens, the read-only token on
// writes, the bouncer API with right and wrong keys, and checks that the
// log never holds the admin token, the read-only token, the bouncer key,
// the invitation token or either member's private key, in any of the
// encodings they are kept or sent in. Also the errors an operator's CLI
// shows for a wrong token or a damaged invitation.
func TestNoSecretsInLogs(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := time.Now()
	d1 := filepath.Join(t.TempDir(), "founder")
	d2 := filepath.Join(t.TempDir(), "second")
	if _, err := Init(d1, "secrets", "127.0.0.1:0", nil, now); err != nil {
		t.Fatal(err)
	}
	keys, err := bouncerapi.OpenKeys(filepath.Join(d1, "bouncers.json"))
	if err != nil {
		t.Fatal(err)
	}
	bouncerKey, err := keys.Add("firewall")
	if err != nil {
		t.Fatal(err)
	}
	m1 := startLogged(t, d1, log, func(m *Member) {
		m.MountBouncerAPI(bouncerapi.New(m.Decisions(), keys, log).Handler())
	})
	invitation, err := Invite(d1, ledger.RoleMember, "", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	// A damaged invitation: the error must not repeat it.
	damaged := invitation[:len(invitation)-4] + "AAAA"
	if _, err := Join(damaged, filepath.Join(t.TempDir(), "bad"), "bad", nil, now); err == nil || strings.Contains(err.Error(), damaged) || strings.Contains(err.Error(), invitation) {
		t.Errorf("Join with a damaged invitation: %v", err)
	}
	if _, err := Join(invitation, d2, "second", nil, now); err != nil {
		t.Fatal(err)
	}
	m2 := startLogged(t, d2, log)

	c, err := Client(d1)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := APIToken(d1, true)
	if err != nil {
		t.Fatal(err)
	}
	admin := c.token
	req := func(method, path string, h map[string]string, body string) int {
		t.Helper()
		r, _ := http.NewRequestWithContext(t.Context(), method, c.base+path, strings.NewReader(body))
		for k, v := range h {
			r.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	for _, tc := range []struct {
		method, path string
		h            map[string]string
		body         string
		want         int
	}{
		{"GET", "/v1/health", bearer(admin), "", 200},
		{"GET", "/v1/decisions", bearer(ro), "", 200},
		{"GET", "/v1/health", bearer(admin + "0"), "", 401},
		{"GET", "/v1/health", bearer(admin[:63]), "", 401},
		{"GET", "/v1/health", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+admin))}, "", 401},
		{"POST", "/v1/decisions", bearer(ro), `{"value":"192.0.2.1","reason":"x"}`, 403},
		{"POST", "/v1/decisions", bearer(admin), `{"value":"192.0.2.1","reason":"` + admin + `"`, 400},
		{"GET", "/v1/health?token=" + admin, bearer(admin), "", 400},
		{"GET", "/v1/" + admin, bearer(admin), "", 404},
		{"POST", "/v1/decisions", bearer(admin), `{"value":"192.0.2.9","duration":"1h","reason":"secrets test"}`, 202},
		{"POST", "/v1/drill", bearer(admin), "", 200},
		{"GET", "/v1/decisions", map[string]string{"X-Api-Key": bouncerKey}, "", 200},
		{"GET", "/v1/decisions/stream?startup=true", map[string]string{"X-Api-Key": bouncerKey}, "", 200},
		{"GET", "/v1/decisions/stream?startup=true", map[string]string{"X-Api-Key": bouncerKey + "x"}, "", 403},
		{"GET", "/v1/decisions", map[string]string{"X-Api-Key": admin}, "", 403},
		{"GET", "/v1/decisions/stream", nil, "", 403},
	} {
		if got := req(tc.method, tc.path, tc.h, tc.body); got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	// The Go client (the CLI's) with a wrong token.
	wrongClient := *c
	wrongClient.token = admin[:60] + "beef"
	if _, err := wrongClient.Health(t.Context()); err == nil || strings.Contains(err.Error(), wrongClient.token) || strings.Contains(err.Error(), admin) {
		t.Errorf("client error with a wrong token: %v", err)
	}

	secrets := map[string]string{"admin token": admin, "read-only token": ro, "bouncer key": bouncerKey, "invitation": invitation}
	for i, m := range []*Member{m1, m2} {
		priv := m.id.Private
		seed := priv.Seed()
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		n := string(rune('1' + i))
		secrets["member "+n+" seed hex"] = hex.EncodeToString(seed)
		secrets["member "+n+" seed base64"] = base64.RawStdEncoding.EncodeToString(seed)[:40]
		secrets["member "+n+" key base64"] = base64.RawStdEncoding.EncodeToString(priv)[:40]
		secrets["member "+n+" key base64url"] = base64.RawURLEncoding.EncodeToString(priv)[:40]
		// PKCS#8 DER starts with a fixed header: the part after it is the seed.
		secrets["member "+n+" pkcs8 base64"] = base64.StdEncoding.EncodeToString(der)[24:]
	}
	// A line or two more from both members, then read everything logged.
	out := logs.String()
	if strings.Count(out, "\n") < 10 || !strings.Contains(out, "level=DEBUG") && !strings.Contains(out, "level=INFO") {
		t.Fatalf("the capture logged almost nothing (%d lines): is the logger wired?\n%s", strings.Count(out, "\n"), out)
	}
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("%s is empty", what)
		}
		if strings.Contains(out, s) || strings.Contains(out, url.QueryEscape(s)) {
			t.Errorf("the log holds the %s", what)
		}
	}
	// The data directory's own copy of the key is where it belongs, and
	// nowhere else: the log lines mention the file, not its contents.
	raw, err := os.ReadFile(filepath.Join(d1, fileIdentity))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		for _, f := range strings.FieldsFunc(sc.Text(), func(r rune) bool { return r == '"' || r == ' ' || r == ',' }) {
			if len(f) >= 40 && strings.Contains(out, f) && !strings.Contains(f, string(m1.id.ID)) && !strings.Contains(f, base64.StdEncoding.EncodeToString(m1.id.Public)) {
				t.Errorf("the log holds a piece of identity.json: %.20s…", f)
			}
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", out)
	}
}
