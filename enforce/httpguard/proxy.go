package httpguard

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// NewProxy returns a reverse proxy to upstream guarded by g. The upstream
// sees X-Forwarded-For as the chain the guard believes: the incoming chain
// is kept only when the peer is a trusted proxy (then the peer is
// appended), so a client cannot plant an address for the application to
// trust. X-Real-IP carries the address the guard judged.
func NewProxy(upstream *url.URL, g *Guard) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			// Rewrite strips the forwarding headers from Out; copy the
			// incoming chain back only when a trusted proxy wrote it.
			if g.isTrusted(peerAddr(pr.In.RemoteAddr)) {
				if v := pr.In.Header.Values("X-Forwarded-For"); len(v) > 0 {
					pr.Out.Header["X-Forwarded-For"] = v
				}
			}
			pr.SetXForwarded()
			pr.Out.Header.Del("X-Real-IP")
			if a := g.ClientAddr(pr.In); a.IsValid() {
				pr.Out.Header.Set("X-Real-IP", a.String())
			}
		},
		ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return g.Middleware(rp)
}

// ForwardAuth returns the endpoint for a proxy's auth sub-request. The
// proxy must send the client's address in X-Forwarded-For (and be listed
// in TrustedProxies); the answers are
//
//	200  allow
//	403  ban
//	429  throttle, with Retry-After (403 to nginx, see below)
//	401  captcha, with the challenge page as the body
//
// What each proxy sends and does with the answer:
//
//   - Traefik forwardAuth sends X-Forwarded-For, X-Forwarded-Method,
//     X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri, and copies
//     a non-2xx answer, body and headers included, to the client.
//   - Caddy forward_auth sends X-Forwarded-For, X-Forwarded-Method and
//     X-Forwarded-Uri, and copies a non-2xx answer to the client.
//   - nginx auth_request sends what the configuration sets (by convention
//     X-Original-URI $request_uri and X-Forwarded-For
//     $proxy_add_x_forwarded_for, or X-Real-IP $remote_addr). It
//     understands only 2xx, 401 and 403 (anything else is a 500) and drops
//     the body, so a request carrying X-Original-URI but no X-Forwarded-Uri
//     gets 403 for throttle, and its configuration maps 401 to the
//     challenge page with error_page 401 = /.phalanx/challenge.
//
// In every case the proxy routes /.phalanx/challenge to the guard itself,
// unguarded by the sub-request: that is where the page posts its answer.
// The handler answers that path too.
func (g *Guard) ForwardAuth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := g.ClientAddr(r)
		v, retry := g.check(r, addr)
		if v != deny && r.URL.Path == challengePath {
			g.serveChallenge(w, r, addr)
			return
		}
		uri := r.Header.Get("X-Forwarded-Uri")
		nginx := uri == "" && r.Header.Get("X-Original-URI") != ""
		if uri == "" {
			uri = r.Header.Get("X-Original-URI")
		}
		switch v {
		case allow:
			g.stats.allowed.Add(1)
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
		case deny:
			g.stats.banned.Add(1)
			plain(w, http.StatusForbidden, "Forbidden: this address is blocked.\n")
		case throttle:
			if nginx {
				g.stats.throttled.Add(1)
				plain(w, http.StatusForbidden, "Too many requests: slow down.\n")
				return
			}
			g.writeThrottled(w, retry)
		case challenge:
			g.stats.challenged.Add(1)
			g.writeChallengePage(w, r, addr, http.StatusUnauthorized, uri)
		}
	})
}
