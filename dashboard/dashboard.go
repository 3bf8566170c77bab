// Package dashboard is a member's web page: a live feed of attacks and
// decisions, the members with their health and ledger lag, time-to-protect
// from drills, top attackers and scenarios, the ledger's decisions with
// their evidence and reporters, and a ceasefire control.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary: no
// build step. It carries no data; everything it shows comes from the
// member's token-guarded API (the page asks for the token once and sends
// it as a bearer header), so the files themselves are served without the
// token check.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// files is the static directory as the root of what is served.
var files = func() fs.FS {
	f, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded: only a build mistake gets here
	}
	return f
}()

// Prefix is where the page's assets are served from.
const Prefix = "/ui/"

// Mounter is what the dashboard mounts on: a *member.Member.
type Mounter interface {
	Mount(pattern string, h http.Handler)
}

// Mount serves the page at / and its assets under /ui/ on m. Call before
// the member runs.
func Mount(m Mounter) {
	h := Handler()
	m.Mount("GET /{$}", h)
	m.Mount("GET "+Prefix, h)
}

// Handler serves index.html for / and the static files under /ui/.
func Handler() http.Handler {
	assets := http.StripPrefix(Prefix, http.FileServerFS(files))
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic(err) // embedded: only a build mistake gets here
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The page shows attacker-controlled text (evidence lines). It
		// renders it with textContent; the policy is the second wall: no
		// inline script, nothing from elsewhere, no framing.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == "/" {
			h.Set("Content-Type", "text/html; charset=utf-8")
			w.Write(index)
			return
		}
		assets.ServeHTTP(w, r)
	})
}
