package httpguard_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/enforce/httpguard"
)

// Any Go web server can put the guard in front of its handler. Here the
// decision set holds a ban on the address the test client connects from.
func Example() {
	set := decisions.New(nil)
	guard := httpguard.New(set, httpguard.Config{
		// Believe X-Forwarded-For only from the load balancer.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		// Keep the secret across restarts so that solved challenges stay solved.
		Secret: []byte("load me from a 0600 file"),
	}, slog.Default())

	app := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello\n") })
	srv := httptest.NewServer(guard.Middleware(app))
	defer srv.Close()

	get := func() {
		resp, err := http.Get(srv.URL)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s", resp.StatusCode, body)
	}
	get()
	set.Add(phalanx.Decision{
		Value: netip.MustParsePrefix("127.0.0.1/32"), Type: phalanx.Ban,
		Duration: time.Hour, LastSeen: time.Now(),
	})
	get()
	// Output:
	// 200 hello
	// 403 Forbidden: this address is blocked.
}
