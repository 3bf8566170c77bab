package loggen

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
)

// An sshd connection: one process id and one client port for all its
// lines, as OpenSSH logs them.
type sshConn struct {
	pid  int
	port int
	addr netip.Addr
}

func (g *gen) newConn(r *rand.Rand, a netip.Addr) sshConn {
	// Each connection forks a listener child and a privilege-separated
	// child: process ids advance by a few per connection.
	g.pid += 2 + r.IntN(3)
	if g.pid > 4_194_000 {
		g.pid = 1000 + r.IntN(1000)
	}
	return sshConn{pid: g.pid, port: 1024 + r.IntN(64511), addr: a}
}

// sshLine starts a line of connection c; the caller appends the message
// and emits the item.
func (g *gen) sshLine(at int64, who int, hostile bool, c *sshConn) *item {
	it := g.line(at, who, hostile)
	it.pid = c.pid
	return it
}

// say emits a line made of s, then the address and port in the form
// "ADDR port P", then tail.
func (g *gen) say(at int64, who int, hostile bool, c *sshConn, s, tail string) {
	it := g.sshLine(at, who, hostile, c)
	it.msg = append(it.msg, s...)
	it.msg = appendAddrPort(it.msg, c)
	it.msg = append(it.msg, tail...)
	g.emit(it)
}

// sayUser emits head + user + mid + "ADDR port P" + tail.
func (g *gen) sayUser(at int64, who int, hostile bool, c *sshConn, head, user, mid, tail string) {
	it := g.sshLine(at, who, hostile, c)
	it.msg = append(it.msg, head...)
	it.msg = append(it.msg, user...)
	it.msg = append(it.msg, mid...)
	it.msg = appendAddrPort(it.msg, c)
	it.msg = append(it.msg, tail...)
	g.emit(it)
}

// plain emits a message that names no address.
func (g *gen) plain(at int64, who int, hostile bool, c *sshConn, msg string) {
	it := g.sshLine(at, who, hostile, c)
	it.msg = append(it.msg, msg...)
	g.emit(it)
}

// pamFailure emits PAM's record of a wrong password for a valid user.
func (g *gen) pamFailure(at int64, who int, c *sshConn, user string) {
	it := g.sshLine(at, who, false, c)
	it.msg = append(it.msg, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost="...)
	it.msg = appendAddr(it.msg, c.addr)
	it.msg = append(it.msg, "  user="...)
	it.msg = append(it.msg, user...)
	g.emit(it)
}

func appendAddrPort(b []byte, c *sshConn) []byte {
	b = appendAddr(b, c.addr)
	b = append(b, " port "...)
	return appendInt(b, c.port)
}

// sshUser is an account on the server, or a name an attacker tries.
type sshUser struct {
	name  string
	uid   int
	valid bool
}

// Accounts that exist on the generated server.
var validUsers = map[string]int{"root": 0, "deploy": 1001, "nagios": 1002, "git": 1003, "backup": 1004, "ansible": 1005}

func attackUser(name string) sshUser {
	uid, ok := validUsers[name]
	return sshUser{name: name, uid: uid, valid: ok}
}

// Names brute-forcers try, in the order of their popularity.
var guessNames = []string{
	"root", "root", "root", "root", "admin", "user", "test", "ubuntu", "oracle", "postgres",
	"guest", "support", "ftpuser", "pi", "git", "mysql", "debian", "centos", "hadoop", "tomcat",
	"jenkins", "minecraft", "steam", "user1", "test1", "www", "web", "dev", "teamspeak", "es",
	"elastic", "kafka", "nginx", "apache", "odoo", "sammy", "vagrant", "ansible", "backup", "demo",
}

// Syllables for distinct names in user enumeration.
var (
	firstNames = []string{
		"john", "mike", "anna", "maria", "david", "paul", "peter", "lisa", "sara", "tom",
		"alex", "chris", "daniel", "eva", "frank", "george", "helen", "ivan", "julia", "kevin",
		"laura", "mark", "nina", "oscar", "rita", "steve", "tina", "victor", "wendy", "yuri",
	}
	nameTails = []string{"", "1", "123", "01", "2023", "_adm", ".dev", "-test", "2", "99", "admin", "x"}
)

// keyFingerprint returns a plausible SHA256 key fingerprint.
func keyFingerprint(r *rand.Rand) string {
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b [43]byte
	for i := range b {
		b[i] = b64[r.IntN(64)]
	}
	return "SHA256:" + string(b[:])
}

// ---- attackers ----

// sshBrute is a password guesser: fast, medium, low and slow, a user
// enumerator, or a bot rotating through addresses of one /64.
type sshBrute struct {
	tag
	r     *rand.Rand
	addrs []netip.Addr
	next  int // index of the next address to use

	left             int   // guesses (or probes) still to make
	gapLo, gapHi     int64 // ms between the starts of two connections
	perConnLo, perHi int   // guesses per connection
	probeFrac        float64
	enumerate        bool // one distinct invalid user per connection
	enumN            int
}

func (b *sshBrute) wake(g *gen, now int64) int64 {
	if b.left <= 0 {
		return -1
	}
	r := b.r
	a := b.addrs[b.next%len(b.addrs)]
	b.next++
	c := g.newConn(r, a)
	switch {
	case b.probeFrac > 0 && r.Float64() < b.probeFrac:
		sshProbe(g, r, now, b.who, &c, r.IntN(4))
		b.left--
	case b.enumerate:
		u := distinctName(b.enumN)
		b.enumN++
		t := now
		g.sayUser(t, b.who, true, &c, "Invalid user ", u, " from ", "")
		if r.IntN(2) == 0 {
			t += between(r, 1500, 4000)
			g.plain(t, b.who, false, &c, "pam_unix(sshd:auth): check pass; user unknown")
			g.sayUser(t, b.who, true, &c, "Failed password for invalid user ", u, " from ", " ssh2")
		}
		t += between(r, 200, 1500)
		g.sayUser(t, b.who, true, &c, "Connection closed by invalid user ", u, " ", " [preauth]")
		b.left--
	default:
		n := b.perConnLo + r.IntN(b.perHi-b.perConnLo+1)
		if n > b.left {
			n = b.left
		}
		b.left -= n
		sshGuesses(g, r, now, b.who, &c, attackUser(guessNames[r.IntN(len(guessNames))]), n)
	}
	return now + between(r, b.gapLo, b.gapHi)
}

// distinctName returns the i-th of a long list of distinct user names.
func distinctName(i int) string {
	f := firstNames[i%len(firstNames)]
	t := nameTails[(i/len(firstNames))%len(nameTails)]
	if k := i / (len(firstNames) * len(nameTails)); k > 0 {
		return f + t + strconv.Itoa(k)
	}
	return f + t
}

// sshGuesses writes one connection with n failed passwords for u.
func sshGuesses(g *gen, r *rand.Rand, t int64, who int, c *sshConn, u sshUser, n int) {
	kind := "authenticating user "
	if !u.valid {
		kind = "invalid user "
		g.sayUser(t, who, true, c, "Invalid user ", u.name, " from ", "")
		t += between(r, 100, 800)
	}
	for i := 0; i < n; i++ {
		t += between(r, 1200, 3500)
		if u.valid {
			g.pamFailure(t, who, c, u.name)
			g.sayUser(t, who, true, c, "Failed password for ", u.name, " from ", " ssh2")
		} else {
			if i == 0 {
				g.plain(t, who, false, c, "pam_unix(sshd:auth): check pass; user unknown")
			}
			g.sayUser(t, who, true, c, "Failed password for invalid user ", u.name, " from ", " ssh2")
		}
	}
	t += between(r, 100, 1500)
	if n >= 6 {
		inv := ""
		if !u.valid {
			inv = "invalid user "
		}
		g.sayUser(t, who, true, c, "error: maximum authentication attempts exceeded for "+inv, u.name, " from ", " ssh2 [preauth]")
		g.sayUser(t, who, false, c, "Disconnecting "+kind, u.name, " ", ": Too many authentication failures [preauth]")
		return
	}
	switch r.IntN(3) {
	case 0:
		g.sayUser(t, who, true, c, "Connection closed by "+kind, u.name, " ", " [preauth]")
	default:
		g.say(t, who, false, c, "Received disconnect from ", ":11: Bye Bye [preauth]")
		g.sayUser(t, who, true, c, "Disconnected from "+kind, u.name, " ", " [preauth]")
	}
}

// Key exchange offers of old clients and scanners.
var kexOffers = []string{
	"no matching key exchange method found. Their offer: diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1,diffie-hellman-group1-sha1",
	"no matching key exchange method found. Their offer: diffie-hellman-group1-sha1",
	"no matching host key type found. Their offer: ssh-rsa,ssh-dss",
	"no matching cipher found. Their offer: aes128-cbc,3des-cbc,aes256-cbc",
}

// sshProbe writes a connection that never gets to authentication:
// kind 0 a key exchange mismatch, 1 a garbage banner, 2 a closed or
// reset connection before the banner, 3 a close after key exchange.
func sshProbe(g *gen, r *rand.Rand, t int64, who int, c *sshConn, kind int) {
	switch kind {
	case 0:
		g.say(t, who, true, c, "Unable to negotiate with ", ": "+kexOffers[r.IntN(len(kexOffers))]+" [preauth]")
	case 1:
		g.plain(t, who, false, c, "error: kex_exchange_identification: banner line contains invalid characters")
		g.say(t, who, true, c, "banner exchange: Connection from ", ": invalid format")
	case 2:
		if r.IntN(2) == 0 {
			g.plain(t, who, false, c, "error: kex_exchange_identification: Connection closed by remote host")
			g.say(t, who, true, c, "Connection closed by ", "")
		} else {
			g.plain(t, who, false, c, "error: kex_exchange_identification: read: Connection reset by peer")
			g.say(t, who, true, c, "Connection reset by ", "")
		}
	default:
		g.say(t+between(r, 100, 900), who, true, c, "Connection closed by ", " [preauth]")
	}
}

// sshProber probes the server's banner or key exchange now and then.
type sshProber struct {
	tag
	r            *rand.Rand
	addr         netip.Addr
	left         int
	gapLo, gapHi int64
	kinds        []int
}

func (p *sshProber) wake(g *gen, now int64) int64 {
	if p.left <= 0 {
		return -1
	}
	p.left--
	c := g.newConn(p.r, p.addr)
	sshProbe(g, p.r, now, p.who, &c, p.kinds[p.r.IntN(len(p.kinds))])
	return now + between(p.r, p.gapLo, p.gapHi)
}

// ---- legitimate clients ----

// sshLogin is a legitimate client: a user who logs in, sometimes after
// mistyping a password.
type sshLogin struct {
	tag
	r     *rand.Rand
	addrs []netip.Addr
	users []sshUser

	keyFrac        float64 // share of logins by key
	gapLo, gapHi   int64   // between logins
	sessLo, sessHi int64   // session length
	fromMs, toMs   int64   // active window within each day (ms after midnight); equal: all day
	failProb       float64 // chance that a password login starts with mistakes
	failMax        int     // at most this many mistakes
	failGap        int64   // no two mistaken logins closer than this
	lastFail       int64
	left           int // logins still to make; negative: unlimited
}

func (l *sshLogin) wake(g *gen, now int64) int64 {
	if l.left == 0 {
		return -1
	}
	r := l.r
	if l.fromMs != l.toMs {
		if tod := g.tod(now); tod < l.fromMs || tod >= l.toMs {
			// Outside working hours: sleep until the window opens.
			next := now - tod + l.fromMs
			if tod >= l.fromMs {
				next += 24 * hour
			}
			return next + between(r, 0, 20*minute)
		}
	}
	if l.left > 0 {
		l.left--
	}
	u := l.users[r.IntN(len(l.users))]
	a := l.addrs[r.IntN(len(l.addrs))]
	key := r.Float64() < l.keyFrac
	fails := 0
	if !key && l.failProb > 0 && r.Float64() < l.failProb && now-l.lastFail >= l.failGap {
		fails = 1
		for fails < l.failMax && r.IntN(3) == 0 {
			fails++
		}
		l.lastFail = now
	}
	c := g.newConn(r, a)
	sshSession(g, r, now, l.who, &c, u, key, fails, between(r, l.sessLo, l.sessHi))
	return now + between(r, l.gapLo, l.gapHi)
}

// sshSession writes a successful login, after fails mistyped passwords,
// and its end dur ms later.
func sshSession(g *gen, r *rand.Rand, t int64, who int, c *sshConn, u sshUser, key bool, fails int, dur int64) {
	for i := 0; i < fails; i++ {
		t += between(r, 2000, 6000)
		g.pamFailure(t, who, c, u.name)
		g.sayUser(t, who, true, c, "Failed password for ", u.name, " from ", " ssh2")
	}
	t += between(r, 300, 3000)
	if key {
		it := g.sshLine(t, who, false, c)
		it.msg = append(it.msg, "Accepted publickey for "...)
		it.msg = append(it.msg, u.name...)
		it.msg = append(it.msg, " from "...)
		it.msg = appendAddrPort(it.msg, c)
		if u.uid%3 == 1 {
			it.msg = append(it.msg, " ssh2: RSA "...)
		} else {
			it.msg = append(it.msg, " ssh2: ED25519 "...)
		}
		it.msg = append(it.msg, keyFingerprint(r)...)
		g.emit(it)
	} else {
		g.sayUser(t, who, false, c, "Accepted password for ", u.name, " from ", " ssh2")
	}
	it := g.sshLine(t, who, false, c)
	it.msg = append(it.msg, "pam_unix(sshd:session): session opened for user "...)
	it.msg = append(it.msg, u.name...)
	it.msg = append(it.msg, "(uid="...)
	it.msg = appendInt(it.msg, u.uid)
	it.msg = append(it.msg, ") by (uid=0)"...)
	g.emit(it)
	t += dur
	g.say(t, who, false, c, "Received disconnect from ", ":11: disconnected by user")
	g.sayUser(t, who, false, c, "Disconnected from user ", u.name, " ", "")
	it = g.sshLine(t, who, false, c)
	it.msg = append(it.msg, "pam_unix(sshd:session): session closed for user "...)
	it.msg = append(it.msg, u.name...)
	g.emit(it)
}

// sshBadKey is a job whose key the server rejects: at INFO level all
// sshd says is that the authenticating user closed the connection.
type sshBadKey struct {
	tag
	r            *rand.Rand
	addr         netip.Addr
	user         string
	gapLo, gapHi int64
}

func (k *sshBadKey) wake(g *gen, now int64) int64 {
	c := g.newConn(k.r, k.addr)
	g.sayUser(now+between(k.r, 200, 900), k.who, true, &c, "Connection closed by authenticating user ", k.user, " ", " [preauth]")
	return now + between(k.r, k.gapLo, k.gapHi)
}

// sshBackground is the anonymous legitimate crowd: developers pushing to
// git over ssh, people logging in, automation.
type sshBackground struct {
	r        *rand.Rand
	people   []sshUser
	homes    []netip.Addr // people[i] logs in from homes[i]
	sessions float64      // sessions to write over the whole log
	started  bool
}

const sshBgFail = 0.005 // share of background logins with a mistyped password

func (s *sshBackground) setBudget(lines int) {
	// A session writes 5 lines; a mistake adds 2.
	const perSession = 5.0
	s.sessions = max(0, float64(lines)/perSession)
}

func (s *sshBackground) wake(g *gen, now int64) int64 {
	r := s.r
	if s.started {
		i := r.IntN(len(s.people))
		u, a := s.people[i], s.homes[i]
		key := u.name == "git" || r.IntN(10) < 8
		if u.name == "git" {
			// Many addresses push to git: a developer or a CI runner.
			a = backgroundAddr(r, r.IntN(6) == 0)
		}
		fails := 0
		if !key && r.Float64() < sshBgFail*5 {
			fails = 1
		}
		dur := between(r, 2*second, 40*second)
		if u.name != "git" {
			dur = between(r, 30*second, 3*hour)
		}
		c := g.newConn(r, a)
		sshSession(g, r, now, -1, &c, u, key, fails, dur)
	}
	s.started = true
	if s.sessions < 1 {
		return -1
	}
	mean := float64(g.end) / s.sessions / diurnal(g.tod(now))
	return now + 1 + int64(r.ExpFloat64()*mean)
}

// diurnal is the relative activity at a time of day (mean 1 over a day).
func diurnal(ms int64) float64 {
	h := (ms / hour) % 24
	return hourWeight[h]
}

var hourWeight = func() [24]float64 {
	w := [24]float64{0.3, 0.25, 0.2, 0.2, 0.2, 0.25, 0.4, 0.7, 1.1, 1.4, 1.5, 1.5, 1.4, 1.5, 1.5, 1.5, 1.4, 1.2, 1.0, 0.8, 0.7, 0.6, 0.5, 0.4}
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	for i := range w {
		w[i] *= 24 / sum
	}
	return w
}()

// setupSSHD creates the sshd actors.
func (g *gen) setupSSHD(background bool) {
	add := func(name, class string, expect Expect, addrs []netip.Addr, act interface {
		actor
		setWho(int)
	}, first int64, note string) {
		act.setWho(g.addActor(Actor{Name: name, Class: class, Addrs: addrs, Expect: expect, Note: note}, act, first))
	}
	one := func(a netip.Addr) []netip.Addr { return []netip.Addr{a} }

	// Fast brute-forcers: dozens of guesses a minute.
	for i := 1; i <= 3; i++ {
		name := "ssh-brute-fast-" + strconv.Itoa(i)
		r := g.rng(name)
		a := g.attackerAddr(r, i == 3)
		b := &sshBrute{r: r, addrs: one(a), left: g.scaled(2000, 80), gapLo: 1500, gapHi: 4000, perConnLo: 1, perHi: 6}
		add(name, "ssh-brute-fast", ExpectBan, b.addrs, b, between(r, 0, g.day(0.9)), "")
	}
	// Medium: a guess every 10 to 30 seconds.
	for i := 1; i <= 3; i++ {
		name := "ssh-brute-medium-" + strconv.Itoa(i)
		r := g.rng(name)
		a := g.attackerAddr(r, i == 2)
		b := &sshBrute{r: r, addrs: one(a), left: g.scaled(500, 30), gapLo: 10 * second, gapHi: 30 * second, perConnLo: 1, perHi: 1}
		add(name, "ssh-brute-medium", ExpectBan, b.addrs, b, between(r, 0, g.day(0.8)), "")
	}
	// Low and slow: a guess or a probe every 2 to 10 minutes, for hours.
	for i := 1; i <= 6; i++ {
		name := "ssh-brute-slow-" + strconv.Itoa(i)
		r := g.rng(name)
		a := g.attackerAddr(r, i == 4)
		n := g.scaled(90, 15)
		b := &sshBrute{r: r, addrs: one(a), left: n, gapLo: 2 * minute, gapHi: 10 * minute, perConnLo: 1, perHi: 1, probeFrac: 0.25}
		span := int64(n) * 6 * minute
		add(name, "ssh-brute-slow", ExpectBan80, b.addrs, b, between(r, 0, max(0, g.end-span)), "a guess or probe every 2-10 min")
	}
	// User enumeration: many distinct invalid users.
	{
		name := "ssh-user-enum-1"
		r := g.rng(name)
		b := &sshBrute{r: r, addrs: one(g.attackerAddr(r, false)), left: g.scaled(1000, 40), gapLo: 2 * second, gapHi: 6 * second, enumerate: true}
		add(name, "ssh-user-enum", ExpectBan, b.addrs, b, between(r, 0, g.day(0.9)), "")
	}
	// Probers: key exchange and banner garbage, again and again.
	for i := 1; i <= 4; i++ {
		name := "ssh-probe-" + strconv.Itoa(i)
		r := g.rng(name)
		kinds := []int{0}
		if i%2 == 0 {
			kinds = []int{1, 1, 2}
		}
		p := &sshProber{r: r, addr: g.attackerAddr(r, false), left: g.scaled(60, 12), gapLo: 20 * second, gapHi: 3 * minute, kinds: kinds}
		add(name, "ssh-probe", ExpectBan80, one(p.addr), p, between(r, 0, g.day(0.85)), "key exchange or banner probes")
	}
	// One bot rotating through the addresses of one IPv6 /64.
	{
		name := "ssh-ipv6-subnet-1"
		r := g.rng(name)
		p, addrs := g.subnet64(r, 8)
		b := &sshBrute{r: r, addrs: addrs, left: g.scaled(100, 64), gapLo: 3 * second, gapHi: 12 * second, perConnLo: 1, perHi: 2}
		b.who = g.addActor(Actor{Name: name, Class: "ssh-ipv6-subnet", Addrs: addrs, Prefix: p, Expect: ExpectBan, Note: "one bot, addresses of one /64 in turn"}, b, between(r, 0, g.day(0.9)))
	}

	// Legitimate: people who mistype a password once to three times.
	for i := 1; i <= 6; i++ {
		name := "ssh-mistype-" + strconv.Itoa(i)
		r := g.rng(name)
		u := sshUser{name: firstNames[r.IntN(len(firstNames))], uid: 1100 + i, valid: true}
		l := &sshLogin{r: r, addrs: one(g.legitAddr(r, i == 5)), users: []sshUser{u}, gapLo: hour, gapHi: 6 * hour,
			sessLo: minute, sessHi: 2 * hour, failProb: 1, failMax: 3, left: 1 + r.IntN(3)}
		add(name, "ssh-mistype", ExpectNoBan, l.addrs, l, between(r, 0, g.day(0.7)), "1-3 mistakes, then a login")
	}
	// An office behind one NAT address: 20 people, an occasional mistake
	// each, spread over the working day and always followed by a login.
	{
		name := "ssh-office-nat-1"
		r := g.rng(name)
		users := make([]sshUser, 20)
		for j := range users {
			users[j] = sshUser{name: distinctName(j*7 + 3), uid: 1200 + j, valid: true}
		}
		l := &sshLogin{r: r, addrs: one(g.legitAddr(r, false)), users: users, keyFrac: 0.6, gapLo: minute, gapHi: 5 * minute,
			sessLo: 5 * minute, sessHi: 3 * hour, fromMs: 8 * hour, toMs: 18*hour + 30*minute,
			failProb: 0.35, failMax: 2, failGap: 10 * minute, left: -1}
		add(name, "ssh-office-nat", ExpectNoBan, l.addrs, l, 8*hour, "20 users behind one address, a few mistakes an hour")
	}
	// A deploy job logging in by key every few minutes.
	{
		name := "ssh-deploy-1"
		r := g.rng(name)
		l := &sshLogin{r: r, addrs: one(g.legitAddr(r, false)), users: []sshUser{{name: "deploy", uid: 1001, valid: true}}, keyFrac: 1,
			gapLo: 3 * minute, gapHi: 7 * minute, sessLo: 5 * second, sessHi: 40 * second, left: -1}
		add(name, "ssh-deploy", ExpectNoBan, l.addrs, l, between(r, 0, 5*minute), "")
	}
	// A misconfigured job whose key is rejected every 2 to 5 minutes.
	{
		name := "ssh-deploy-badkey-1"
		r := g.rng(name)
		k := &sshBadKey{r: r, addr: g.legitAddr(r, false), user: "deploy", gapLo: 2 * minute, gapHi: 5 * minute}
		add(name, "ssh-deploy-badkey", ExpectNoBan, one(k.addr), k, between(r, 0, 5*minute), "rejected key all day: a broken job, not an attack")
	}
	// Monitoring logs in by key every five minutes.
	{
		name := "ssh-monitoring-1"
		r := g.rng(name)
		l := &sshLogin{r: r, addrs: one(g.legitAddr(r, false)), users: []sshUser{{name: "nagios", uid: 1002, valid: true}}, keyFrac: 1,
			gapLo: 5*minute - 2*second, gapHi: 5*minute + 2*second, sessLo: second, sessHi: 3 * second, left: -1}
		add(name, "ssh-monitoring", ExpectNoBan, l.addrs, l, between(r, 0, 5*minute), "")
	}

	if !background {
		return
	}
	r := g.rng("ssh-background")
	people := make([]sshUser, 3000)
	homes := make([]netip.Addr, len(people))
	for i := range people {
		switch {
		case i%5 < 3:
			people[i] = sshUser{name: "git", uid: 1003, valid: true}
		case i%50 == 4:
			people[i] = sshUser{name: "ansible", uid: 1005, valid: true}
		default:
			people[i] = sshUser{name: distinctName(i + 1000), uid: 2000 + i, valid: true}
		}
		homes[i] = backgroundAddr(r, i%7 == 0)
	}
	bg := &sshBackground{r: r, people: people, homes: homes}
	g.background = bg
	g.schedule(bg, 0)
}
