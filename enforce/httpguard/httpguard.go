// Package httpguard enforces phalanx decisions in front of web
// applications: a ban is answered 403, a throttle 429 with Retry-After
// once a small per-address allowance is spent, and a captcha with a
// proof-of-work challenge page that the guard serves itself, so that no
// third-party service learns who visits the site.
//
// It comes in three shapes over one Guard: Middleware for any Go
// http.Handler (CoreDNS's func(Handler) Handler), NewProxy for a guarded
// reverse proxy, and ForwardAuth for the auth sub-request of nginx,
// Traefik and Caddy.
//
// The client address is the TCP peer unless the peer is a trusted proxy;
// only then are X-Forwarded-For (or RFC 7239 Forwarded) entries believed,
// walking from the right and stopping at the first hop that is not
// trusted, because every entry left of it was written by the client.
package httpguard

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/phalanx-defence/phalanx"
)

// Lookup is what the guard needs from a decision set; decisions.Set
// satisfies it. Lookups must not fail and must be safe for concurrent use:
// they run on every request, so a missing answer means "no decision".
type Lookup interface {
	Lookup(netip.Addr) (phalanx.Decision, bool)
}

// Config holds the few knobs of a Guard; the zero value of each field but
// Secret is a working default.
type Config struct {
	// TrustedProxies are the peers whose X-Forwarded-For, Forwarded and
	// X-Real-IP headers are believed. Empty means no header is believed.
	TrustedProxies []netip.Prefix
	// Secret is the HMAC key for challenges and pass cookies. Keep it
	// stable across restarts (phalanx guard keeps it in DIR/guard.secret)
	// or every solved challenge is forgotten. A Guard without one makes a
	// random key, good for one process.
	Secret []byte
	// Difficulty is the proof-of-work cost in leading zero bits of
	// SHA-256: 18 (the default) is about 260 000 hashes, well under a
	// second in a browser and a real cost for a bot farm.
	Difficulty int
	// CookieTTL is how long a solved challenge lets an address through:
	// default 1 h.
	CookieTTL time.Duration
	// RetryAfter is the throttle window: a throttled address may make
	// ThrottleBurst requests per RetryAfter (default 60 s).
	RetryAfter time.Duration
	// Clock tells the time; nil is the system clock. Tests drive it to
	// expire cookies without sleeping.
	Clock phalanx.Clock
}

// Defaults.
const (
	DefaultDifficulty = 18
	DefaultCookieTTL  = time.Hour
	DefaultRetryAfter = 60 * time.Second
	// ThrottleBurst is the number of requests a throttled address may make
	// per RetryAfter: enough for a page and its assets, not for a crawl.
	ThrottleBurst = 10
	// maxBuckets bounds the throttle state: only throttled addresses get a
	// bucket, and the least recently seen is dropped beyond this many.
	maxBuckets = 1 << 16
	// challengePath is where the guard serves and verifies its challenge.
	// It sits under a prefix an application is unlikely to use.
	challengePath = "/.phalanx/challenge"
	cookieName    = "phalanx_pass"
)

// Guard decides, for each request, whether it passes. It is safe for
// concurrent use.
type Guard struct {
	l       Lookup
	cfg     Config
	log     *slog.Logger
	clock   phalanx.Clock
	trusted []netip.Prefix
	buckets *bucketLRU

	stats counters
}

type counters struct {
	allowed, banned, throttled, challenged, solved, failed atomic.Uint64
}

// Stats counts what the guard did since it was made.
type Stats struct {
	Allowed    uint64 // requests let through (including by a valid pass cookie)
	Banned     uint64 // answered 403
	Throttled  uint64 // answered 429
	Challenged uint64 // answered with the challenge page
	Solved     uint64 // challenges solved, pass cookies issued
	Failed     uint64 // challenge answers refused
}

// New returns a guard enforcing the decisions l holds.
func New(l Lookup, cfg Config, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Difficulty <= 0 {
		cfg.Difficulty = DefaultDifficulty
	}
	// Beyond 32 bits no browser finishes; the cap keeps a typo from locking
	// every captcha'd visitor out.
	cfg.Difficulty = min(cfg.Difficulty, 32)
	if cfg.CookieTTL <= 0 {
		cfg.CookieTTL = DefaultCookieTTL
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if len(cfg.Secret) == 0 {
		cfg.Secret = randomBytes(32)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = phalanx.SystemClock{}
	}
	trusted := make([]netip.Prefix, 0, len(cfg.TrustedProxies))
	for _, p := range cfg.TrustedProxies {
		if p.IsValid() {
			// A v4 proxy seen on a dual-stack socket arrives as ::ffff:a.b.c.d;
			// addresses are unmapped before matching, so prefixes are too.
			trusted = append(trusted, phalanx.NormalizePrefix(p))
		}
	}
	return &Guard{
		l: l, cfg: cfg, log: log, clock: clock, trusted: trusted,
		buckets: newBucketLRU(maxBuckets),
	}
}

// Stats returns the guard's counters.
func (g *Guard) Stats() Stats {
	return Stats{
		Allowed: g.stats.allowed.Load(), Banned: g.stats.banned.Load(),
		Throttled: g.stats.throttled.Load(), Challenged: g.stats.challenged.Load(),
		Solved: g.stats.solved.Load(), Failed: g.stats.failed.Load(),
	}
}

// verdict is what the guard does with one request.
type verdict int

const (
	allow verdict = iota
	deny
	throttle
	challenge
)

// check is the per-request decision: one lookup, and for a throttled
// address its bucket. retry is set for throttle.
func (g *Guard) check(r *http.Request, addr netip.Addr) (v verdict, retry time.Duration) {
	d, ok := g.l.Lookup(addr)
	if !ok {
		return allow, 0
	}
	switch d.Type {
	case phalanx.Ban:
		return deny, 0
	case phalanx.Throttle:
		if ok, wait := g.take(addr); !ok {
			return throttle, wait
		}
		return allow, 0
	case phalanx.Captcha:
		if g.validPass(r, addr) {
			return allow, 0
		}
		return challenge, 0
	}
	// An unknown type from a newer member: let it through rather than
	// guess at a remedy nobody asked for.
	return allow, 0
}

// Middleware guards next: banned clients get 403, throttled ones 429 once
// their allowance is spent, captcha'd ones the challenge page until they
// solve it. The guard answers POST /.phalanx/challenge itself.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := g.ClientAddr(r)
		v, retry := g.check(r, addr)
		if v != deny && r.URL.Path == challengePath {
			g.serveChallenge(w, r, addr)
			return
		}
		switch v {
		case allow:
			g.stats.allowed.Add(1)
			next.ServeHTTP(w, r)
		case deny:
			g.stats.banned.Add(1)
			g.log.Debug("httpguard: banned", "addr", addr, "path", r.URL.Path)
			plain(w, http.StatusForbidden, "Forbidden: this address is blocked.\n")
		case throttle:
			g.writeThrottled(w, retry)
		case challenge:
			g.stats.challenged.Add(1)
			g.writeChallengePage(w, r, addr, http.StatusForbidden, r.URL.RequestURI())
		}
	})
}

func (g *Guard) writeThrottled(w http.ResponseWriter, retry time.Duration) {
	g.stats.throttled.Add(1)
	secs := int64((retry + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	plain(w, http.StatusTooManyRequests, "Too many requests: slow down.\n")
}

func plain(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}
