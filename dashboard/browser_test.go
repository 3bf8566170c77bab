package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/dashboard"
	"github.com/phalanx-defence/phalanx/member"
)

// wait bounds every step: generous, because the CI machine is shared and
// a cold Chromium start is slow on it.
const wait = 45 * time.Second

// running is a member started for a test, with what a client needs.
type running struct {
	m     *member.Member
	dir   string
	base  string // http://127.0.0.1:port
	token string
	id    string
}

// startMember founds a one-member alliance in a temporary directory, mounts
// the dashboard and runs it until the test ends.
func startMember(t *testing.T) *running {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "member")
	if _, err := member.Init(dir, "dashboard test", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := member.Open(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	m.SetAPIListen("127.0.0.1:0")
	dashboard.Mount(m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Error("member did not stop")
		}
	})

	// Ready is when the API answers and the ledger is connected; the
	// member says so only through its API, so ask it until it does.
	limit := time.NewTimer(wait)
	defer limit.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := member.Client(dir); err == nil {
			if h, err := c.Health(t.Context()); err == nil && h.Connected {
				addr, _ := os.ReadFile(filepath.Join(dir, "api.addr"))
				tok, _ := os.ReadFile(filepath.Join(dir, "api.token"))
				return &running{m: m, dir: dir, base: "http://" + strings.TrimSpace(string(addr)),
					token: strings.TrimSpace(string(tok)), id: string(h.Member)}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("member stopped before it was ready: %v", err)
		case <-limit.C:
			t.Fatal("member not ready")
		case <-tick.C:
		}
	}
}

// state reads GET /v1/events without asking for a stream: the snapshot.
func (r *running) state(t *testing.T) member.StateEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", r.base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == "state" {
			var s member.StateEvent
			if err := json.Unmarshal([]byte(v), &s); err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	t.Fatalf("no state event in the snapshot (status %d)", resp.StatusCode)
	return member.StateEvent{}
}

func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("PHALANX_CHROMIUM"), "/usr/bin/chromium"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("no Chromium: install Debian's chromium (apt-get install chromium) or set PHALANX_CHROMIUM to run the browser test")
	return ""
}

// step runs actions with their own time limit, so a missing element fails
// the test with its name instead of hanging it.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, within the step limit.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func TestDashboardInChromium(t *testing.T) {
	exe := chromium(t)
	began := time.Now()
	r := startMember(t)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1100),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancel()

	// The browser starts on the first call, whose context must have no
	// time limit (it would bound the browser's life); the steps get theirs.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	// The page asks for the token, then shows the member.
	step(t, ctx, "open the page", chromedp.Navigate(r.base+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	t.Logf("browser up and page open after %v", time.Since(began).Round(time.Millisecond))
	step(t, ctx, "enter the token",
		chromedp.SendKeys(chromedp.ID("token"), r.token),
		chromedp.Click(chromedp.ID("token-save")),
		chromedp.WaitVisible(chromedp.CSS(`#members tr[data-member="`+r.id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#conn.on")),
	)
	stored := get(t, ctx, "token kept", chromedp.Evaluate[string](`localStorage.getItem("phalanx.token")`))
	if stored != r.token {
		t.Errorf("localStorage holds %q, want the token", stored)
	}

	// A decision added through the API appears without a reload.
	c, err := member.Client(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddDecision(t.Context(), member.DecisionRequest{Value: "192.0.2.7", Reason: "browser test"}); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "live decision", chromedp.WaitVisible(chromedp.CSS(`#decisions tr[data-value="192.0.2.7"]`)))
	step(t, ctx, "live feed", chromedp.WaitVisible(chromedp.CSS(`#feed li.added`)))

	// Evidence is attacker text: it must render as text, never as markup.
	const payload = `<img src=x onerror=alert(1)>`
	now := time.Now().UTC()
	r.m.Decisions().Add(phalanx.Decision{
		Value: netip.MustParsePrefix("192.0.2.66/32"), Type: phalanx.Ban, Scenario: "xss-probe",
		Duration: time.Hour, FirstSeen: now, LastSeen: now, Events: 1, Origin: phalanx.OriginLocal,
		Evidence: []string{payload},
	})
	step(t, ctx, "evidence shown", chromedp.WaitVisible(chromedp.CSS(`#decisions tr[data-value="192.0.2.66"] td.evidence li`)))
	shown := get(t, ctx, "evidence text", chromedp.Text(chromedp.CSS(`#decisions tr[data-value="192.0.2.66"] td.evidence li`)))
	imgs := get(t, ctx, "img count", chromedp.Evaluate[int](`document.querySelectorAll("img").length`))
	if shown != payload {
		t.Errorf("evidence shows %q, want the text %q", shown, payload)
	}
	if imgs != 0 {
		t.Errorf("%d img elements on the page: evidence was parsed as HTML", imgs)
	}

	// The ceasefire control: start, see it in the ledger, end it.
	step(t, ctx, "start a ceasefire",
		chromedp.SetValue(chromedp.ID("cf-for"), "10m"),
		chromedp.Click(chromedp.ID("cf-start")),
		chromedp.WaitVisible(chromedp.CSS(`#ceasefires tbody tr[data-id]`)),
	)
	cfID := get(t, ctx, "ceasefire id", chromedp.AttributeValue(chromedp.CSS(`#ceasefires tbody tr[data-id]`), "data-id")).Value
	s := r.state(t)
	if len(s.Ceasefires) != 1 || s.Ceasefires[0].ID != cfID {
		t.Fatalf("after start, the API has ceasefires %+v, want %q", s.Ceasefires, cfID)
	}

	png := get(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	out := os.Getenv("PHALANX_ARTIFACTS")
	if out == "" {
		out = t.TempDir()
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(out, "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)

	step(t, ctx, "end the ceasefire",
		chromedp.Click(chromedp.CSS(`#ceasefires button.cf-end`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#ceasefires tbody tr[data-id]`)),
	)
	if s := r.state(t); len(s.Ceasefires) != 0 {
		t.Fatalf("after end, the API has ceasefires %+v", s.Ceasefires)
	}
	t.Logf("browser test done in %v", time.Since(began).Round(time.Millisecond))
}

// TestPage checks what the handler serves and the headers that keep
// attacker text inert even if a rendering bug slipped through.
func TestPage(t *testing.T) {
	h := dashboard.Handler()
	for path, want := range map[string]string{"/": "text/html", "/ui/app.js": "javascript", "/ui/app.css": "text/css"} {
		req, _ := http.NewRequest("GET", path, nil)
		w := &recorder{header: http.Header{}}
		h.ServeHTTP(w, req)
		if w.status != 0 && w.status != 200 {
			t.Errorf("%s: %d", path, w.status)
		}
		if ct := w.header.Get("Content-Type"); !strings.Contains(ct, want) {
			t.Errorf("%s: Content-Type %q, want %s", path, ct, want)
		}
		if csp := w.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
}

type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return io.Discard.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

// newBrowser starts headless Chromium for a test, window w×h.
func newBrowser(t *testing.T, w, h int) context.Context {
	t.Helper()
	exe := chromium(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

func artifact(t *testing.T, name string, png []byte) {
	t.Helper()
	out := os.Getenv("PHALANX_ARTIFACTS")
	if out == "" {
		out = t.TempDir()
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(out, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// TestDashboardHostileText: the empty states say what they mean; then
// attacker-chosen text — terminal escapes, bidi overrides, HTML, a 1 MB
// evidence line, a long IPv6 address — renders as inert, visible, bounded
// text, and neither a wide nor a phone-sized window scrolls sideways.
func TestDashboardHostileText(t *testing.T) {
	r := startMember(t)
	ctx := newBrowser(t, 1400, 1100)
	// The demo's link form: the token in the fragment.
	step(t, ctx, "open the page with the token",
		chromedp.Navigate(r.base+"/#token="+r.token),
		chromedp.WaitVisible(chromedp.CSS(`#members tr[data-member="`+r.id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#decisions tbody tr.empty`)),
	)
	for sel, want := range map[string]string{
		`#decisions tbody tr.empty`: "no decisions in force",
		`#ttp-chart p.empty`:        "No drills yet",
		`#feed li.empty`:            "Waiting for decisions",
		`#top-attackers li.empty`:   "none yet",
		`#who`:                      "0 decisions in force",
	} {
		if got := get(t, ctx, sel, chromedp.Text(chromedp.CSS(sel))); !strings.Contains(got, want) {
			t.Errorf("%s shows %q, want %q", sel, got, want)
		}
	}
	if url := get(t, ctx, "location", chromedp.Evaluate[string](`location.href`)); strings.Contains(url, r.token) {
		t.Errorf("the token stays in the address bar: %s", url)
	}

	const (
		escape = "\x1b[2J\x1b]0;pwned\x07 Failed password for root"
		bidi   = "invoice\u202Efdp.exe\u202C done"
		markup = `<script>alert(1)</script><img src=x onerror=alert(1)>`
		v6     = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"
	)
	huge := strings.Repeat("A", 1<<20)
	now := time.Now().UTC()
	r.m.Decisions().Add(phalanx.Decision{
		Value: netip.MustParsePrefix("192.0.2.77/32"), Type: phalanx.Ban, Scenario: "ssh-bf\u202E\x1b[31m",
		Duration: time.Hour, FirstSeen: now, LastSeen: now, Events: 4, Origin: phalanx.OriginLocal,
		Evidence: []string{escape, bidi, markup, huge},
	})
	r.m.Decisions().Add(phalanx.Decision{
		Value: netip.MustParsePrefix(v6 + "/128"), Type: phalanx.Ban, Scenario: "http-probing",
		Duration: 2 * time.Hour, FirstSeen: now, LastSeen: now, Events: 1, Origin: phalanx.OriginLocal,
		Evidence: []string{"GET /.env HTTP/1.1"},
	})
	row := `#decisions tr[data-value="192.0.2.77"]`
	step(t, ctx, "hostile decision shown",
		chromedp.WaitVisible(chromedp.CSS(row+` td.evidence li`)),
		chromedp.WaitVisible(chromedp.CSS(`#decisions tr[data-value="`+v6+`"]`)),
	)
	lines := get(t, ctx, "evidence lines", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('`+row+` td.evidence li')].map((li) => li.textContent)`))
	if len(lines) != 4 {
		t.Fatalf("evidence lines %q, want 4", lines)
	}
	for i, want := range []string{`\u{1b}[2J\u{1b}]0;pwned\u{7} Failed password`, `invoice\u{202e}fdp.exe\u{202c} done`, markup, "characters)"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("evidence line %d shows %.120q, want it to contain %q", i, lines[i], want)
		}
	}
	if n := len(lines[3]); n > 1000 {
		t.Errorf("the 1 MB evidence line shows %d characters: cut it", n)
	}
	page := get(t, ctx, "page text", chromedp.Evaluate[string](`document.body.innerText`))
	for _, c := range []string{"\x1b", "\u202E", "\u202C", "\x07"} {
		if strings.Contains(page, c) {
			t.Errorf("the page shows the raw character %q", c)
		}
	}
	if strings.Contains(page, huge[:2000]) {
		t.Error("the page shows 2,000 characters of the 1 MB line somewhere")
	}
	if n := get(t, ctx, "elements", chromedp.Evaluate[int](`document.querySelectorAll("img, iframe, object, embed").length + document.scripts.length`)); n != 1 {
		t.Errorf("%d img/script/… elements, want only app.js: attacker text was parsed as HTML", n)
	}
	if ends := get(t, ctx, "ends", chromedp.Text(chromedp.CSS(row+` td.time`))); !strings.HasPrefix(ends, "in ") {
		t.Errorf("ends shows %q, want a relative time first (in 60 min …)", ends)
	}

	for _, size := range []struct {
		name string
		w, h int64
	}{{"wide", 1400, 1100}, {"narrow", 390, 844}} {
		step(t, ctx, "resize to "+size.name, chromedp.EmulateViewport(size.w, size.h))
		over := get(t, ctx, "overflow", chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
		if over > 0 {
			t.Errorf("%s window (%d px): the page scrolls sideways by %d px", size.name, size.w, over)
		}
		artifact(t, "dashboard-hostile-"+size.name+".png", get(t, ctx, "screenshot", chromedp.FullScreenshot(100)))
	}
}
