package web

import (
	"testing"

	"github.com/phalanx-defence/phalanx"
)

// benchMix is a realistic nginx access-log mix: mostly pages, assets and
// API calls from browsers and crawlers, some 404s and redirects, a few
// scanner lines, and the odd error-log line.
var benchMix = []string{
	access("198.51.100.7", "GET / HTTP/2.0", 200, chrome),
	access("198.51.100.7", "GET /static/css/main.4f3a2b.css HTTP/2.0", 200, chrome),
	access("198.51.100.7", "GET /static/js/app.91ac.js HTTP/2.0", 200, chrome),
	access("198.51.100.7", "GET /images/Hero-Banner.webp HTTP/2.0", 200, chrome),
	access("2001:db8:1::42", "GET /blog/2024/03/how-we-scaled-our-api HTTP/1.1", 200, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15"),
	access("66.249.66.1", "GET /robots.txt HTTP/1.1", 200, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
	access("66.249.66.1", "GET /products?page=2&sort=price HTTP/1.1", 200, "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.60 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
	access("203.0.113.50", "POST /api/v1/orders HTTP/1.1", 201, "okhttp/4.12.0"),
	access("203.0.113.51", "GET /api/v1/orders/8812?include=items%2Ccustomer HTTP/1.1", 200, "python-requests/2.31.0"),
	access("198.51.100.9", "HEAD /health HTTP/1.1", 200, "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"),
	access("198.51.100.7", "GET /favicon.ico HTTP/2.0", 404, chrome),
	access("198.51.100.12", "GET /old/path/page.html HTTP/1.1", 301, chrome),
	access("198.51.100.13", "GET /search?q=red+shoes&size=42 HTTP/2.0", 200, chrome),
	access("198.51.100.14", "GET /account HTTP/2.0", 302, chrome),
	`vhost.example.org:443 198.51.100.15 - - [10/Mar/2024:13:55:36 +0100] "GET /docs/Getting-Started HTTP/1.1" 200 8123 "https://www.example.org/" "` + chrome + `"`,
	access("203.0.113.60", "GET /.env HTTP/1.1", 404, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"),
	access("203.0.113.61", "GET /wp-login.php HTTP/1.1", 404, chrome),
	access("203.0.113.62", "GET /index.php?id=1%27%20UNION%20SELECT%201,2-- HTTP/1.1", 404, "sqlmap/1.7"),
	access("203.0.113.63", "GET /nonexistent-page HTTP/1.1", 404, chrome),
	`2024/03/10 13:55:36 [error] 812#812: *41 limiting requests, excess: 10.500 by zone "one", client: 203.0.113.21, server: example.org, request: "GET / HTTP/1.1", host: "example.org"`,
}

func BenchmarkParse(b *testing.B) {
	p := New(phalanx.ServiceNginx, testCtx)
	var ev phalanx.Event
	var bytes int
	for _, l := range benchMix {
		bytes += len(l)
	}
	b.SetBytes(int64(bytes / len(benchMix)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Parse(benchMix[i], &ev)
		i++
		if i == len(benchMix) {
			i = 0
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	ev := phalanx.Event{Method: "GET", Path: "/api/v1/orders/8812?include=items%2Ccustomer", Status: 200, UserAgent: chrome}
	b.ReportAllocs()
	for b.Loop() {
		Classify(&ev)
	}
}

// TestParseAllocs holds ordinary lines to zero allocations: the hot path
// of a replay.
func TestParseAllocs(t *testing.T) {
	p := New(phalanx.ServiceNginx, testCtx)
	var ev phalanx.Event
	for _, l := range benchMix {
		p.Parse(l, &ev) // warm the zone cache
		if n := testing.AllocsPerRun(100, func() { p.Parse(l, &ev) }); n != 0 {
			t.Errorf("%v allocs/op for %s", n, l)
		}
	}
}
