package web

import "strings"

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

// agentIndex buckets badAgents by their first letter.
var agentIndex = func() (idx [26][]string) {
	for _, a := range badAgents {
		idx[a[0]-'a'] = append(idx[a[0]-'a'], a)
	}
	return idx
}()

// badAgent reports whether ua is a known scanner's. Only word starts are
// tried, through a first-letter index, so a browser's user agent costs
// one pass and a few failed comparisons.
func badAgent(ua string) bool {
	for i := 0; i < len(ua); i++ {
		c := lower(ua[i])
		if c < 'a' || c > 'z' || (i > 0 && isWordByte(ua[i-1])) {
			continue
		}
		for _, a := range agentIndex[c-'a'] {
			if agentAt(ua[i:], a) {
				return true
			}
		}
	}
	return false
}

func agentAt(s, a string) bool {
	prefix := a[len(a)-1] == '*'
	if prefix {
		a = a[:len(a)-1]
	}
	if len(s) < len(a) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(s[i]) != a[i] {
			return false
		}
	}
	return prefix || len(s) == len(a) || !isLetter(s[len(a)])
}

// agentExploit reports a payload in the user agent itself: Log4Shell
// "${jndi:...}" (and its obfuscations) and Shellshock "() {".
func agentExploit(ua string) bool {
	if strings.IndexByte(ua, '{') < 0 {
		return false
	}
	return strings.Contains(ua, "${") || strings.Contains(ua, "() {") || strings.Contains(ua, "(){")
}
