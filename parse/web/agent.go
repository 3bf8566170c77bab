package web

import (
	"hash/maphash"
	"strings"
)

// badAgents are user agents of scanners and attack tools, matched
// case-insensitively at the start of a word of the user agent and
// followed by a non-letter. A trailing '*' makes the entry a plain prefix.
// The list is deliberately precise: generic HTTP libraries (curl,
// python-requests, Go-http-client) are what legitimate API clients and
// uptime checkers send, and are not on it.
var badAgents = [...]string{
	// Vulnerability and content scanners.
	"sqlmap", "nikto", "nmap", "masscan", "zgrab", "nuclei", "dirbuster", "dirb", "gobuster",
	"feroxbuster", "ffuf", "wfuzz", "fuzz faster u fool", "wpscan", "joomscan", "droopescan", "acunetix",
	"netsparker", "nessus", "openvas", "w3af", "arachni", "skipfish", "havij", "zmeu", "morfeus",
	"jorgee", "hydra", "whatweb", "commix", "xsstrike", "sqlninja", "pangolin", "bsqlbf", "webshag",
	"nsauditor", "grabber", "appscan", "webinspect", "paros", "l9explore", "l9tcpid", "cgichk",
	"httpx - open-source", "zgrab2", "fimap", "wapiti", "brutus", "metasploit", "blackwidow",
	"crimsonscan*", "muieblackcat", "webvulncrawl*", "struts-pwn", "log4j-scan", "interactsh",
	// fail2ban's apache-badbots: e-mail harvesters and spam bots.
	"trackback/1.02", "emailcollector", "webemailextrac*", "emailsiphon", "emailspider", "emailwolf",
	"extractorpro", "atomic_email_hunter", "psycheclone", "contactbot", "indy library",
	"advanced email extractor", "email extractor", "datacha0s", "missigua locator", "grub crawler",
}

// agentIndex buckets badAgents by their first two bytes (letter, then
// letter or "other"), so that a browser's words ("Mozilla", "AppleWebKit")
// meet at most one or two candidates.
var agentIndex = func() (idx [26 * 27][]agentPattern) {
	for _, a := range badAgents {
		p := agentPattern{s: a}
		if a[len(a)-1] == '*' {
			p.s, p.prefix = a[:len(a)-1], true
		}
		k := agentKey(p.s[0], p.s[1])
		idx[k] = append(idx[k], p)
	}
	return idx
}()

type agentPattern struct {
	s      string // lowercase
	prefix bool   // no word boundary needed after it
}

// agentKey maps a lowercase letter and the byte after it to a bucket.
func agentKey(c0, c1 byte) int {
	c1 = lower(c1)
	k := 26
	if c1 >= 'a' && c1 <= 'z' {
		k = int(c1 - 'a')
	}
	return int(c0-'a')*27 + k
}

// wordClass: 1 for a letter, 2 for a digit or '_', 0 otherwise.
var wordClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = 1, 1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 2
	}
	t['_'] = 2
	return t
}()

// badAgent reports whether ua is a known scanner's. Only word starts are
// tried, through the two-byte index, so a browser's user agent costs one
// pass and a few failed comparisons.
func badAgent(ua string) bool {
	inWord := false
	for i := 0; i+1 < len(ua); i++ {
		cl := wordClass[ua[i]]
		if cl == 1 && !inWord {
			for _, a := range agentIndex[agentKey(lower(ua[i]), ua[i+1])] {
				if agentAt(ua[i:], a) {
					return true
				}
			}
		}
		inWord = cl != 0
	}
	return false
}

func agentAt(s string, a agentPattern) bool {
	if len(s) < len(a.s) {
		return false
	}
	for i := 1; i < len(a.s); i++ {
		if lower(s[i]) != a.s[i] {
			return false
		}
	}
	return a.prefix || len(s) == len(a.s) || wordClass[s[len(a.s)]] != 1
}

// agentExploit reports a payload in the user agent itself: Log4Shell
// "${jndi:...}" (and its obfuscations) and Shellshock "() {".
func agentExploit(ua string) bool {
	if strings.IndexByte(ua, '{') < 0 {
		return false
	}
	return strings.Contains(ua, "${") || strings.Contains(ua, "() {") || strings.Contains(ua, "(){")
}

// agentCacheSize is the number of user-agent verdicts a Parser keeps. User
// agents repeat heavily in access logs, so a small direct-mapped table
// saves the word scan on most lines; it holds hashes, not strings, so
// its memory is fixed whatever clients send.
const agentCacheSize = 1024

type agentCache struct {
	seed    maphash.Seed
	entries [agentCacheSize]uint64 // hash with the low bit replaced by the verdict; 0 is empty
}

// badAgent is the package badAgent behind p's cache; p may be nil. The
// seed is random per parser, so a client cannot aim a collision.
func (p *Parser) badAgent(ua string) bool {
	if p == nil {
		return badAgent(ua)
	}
	h := maphash.String(p.agents.seed, ua) &^ 1 // the low bit holds the verdict
	if h == 0 {
		return badAgent(ua)
	}
	slot := &p.agents.entries[(h>>1)%agentCacheSize]
	if *slot&^1 == h {
		return *slot&1 == 1
	}
	bad := badAgent(ua)
	*slot = h
	if bad {
		*slot |= 1
	}
	return bad
}
