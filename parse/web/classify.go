package web

import (
	"strings"
	"unsafe"

	"github.com/phalanx-defence/phalanx"
)

// Classify sets ev.Kind for an access-log request from Method, Path,
// Status and UserAgent. It is exported so that custom rules and other
// access-log formats can reuse it. Precedence, most specific first:
// malformed request line, exploit payload, open-proxy probe, secret or
// admin file, scanner user agent, then the status (401, 429, 403, 4xx).
func Classify(ev *phalanx.Event) {
	ev.Kind = classify(ev.Method, ev.Path, ev.Status, ev.UserAgent, nil)
}

// classify is Classify with the parser's user-agent cache when p is not
// nil.
func classify(method, path string, status int, ua string, p *Parser) phalanx.EventKind {
	if method == "" {
		if path == "" && status != 400 {
			// "-": a connection closed before any request (browser
			// preconnect, load-balancer probe, 408).
			return phalanx.KindHTTPRequest
		}
		return phalanx.KindHTTPMalformed
	}
	if !validMethod(method) {
		return phalanx.KindHTTPMalformed
	}
	if strings.EqualFold(method, "CONNECT") {
		return phalanx.KindHTTPOpenProxy
	}
	if agentExploit(ua) {
		return phalanx.KindHTTPExploit
	}
	if k := pathKind(path, status); k != phalanx.KindHTTPRequest {
		if k == phalanx.KindHTTPSensitive && status == 401 {
			// A rejected login at a sensitive endpoint (POST
			// /wp-login.php → 401) is one guess of a brute force: it
			// must count with the other failures, not as one path.
			return phalanx.KindHTTPAuthFailed
		}
		return k
	}
	if ua != "" && p.badAgent(ua) {
		return phalanx.KindHTTPBadAgent
	}
	return phalanx.KindHTTPRequest
}

func validMethod(m string) bool {
	if len(m) > 20 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i] | 0x20
		if !(c >= 'a' && c <= 'z' || m[i] == '-' || m[i] == '_') {
			return false
		}
	}
	return true
}

// normBuf is the size of the stack buffer a request target is decoded
// into; longer targets (rare, and mostly attacks) get a heap copy.
const normBuf = 256

// pathKind classifies a request target with a status (0 when unknown)
// and no user agent: exploit, open proxy, malformed, sensitive, or what
// the status says. It returns KindHTTPRequest for an ordinary request.
func pathKind(path string, status int) phalanx.EventKind {
	if path == "" {
		return phalanx.KindHTTPMalformed
	}
	var stack [normBuf]byte
	var buf []byte
	if len(path) <= normBuf {
		buf = stack[:0]
	} else {
		buf = make([]byte, 0, len(path))
	}
	s, q := normalize(buf, path)
	f := scanPath(s, q)
	if f.exploit || exploitText(s, q) {
		return phalanx.KindHTTPExploit
	}
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return phalanx.KindHTTPOpenProxy
	}
	if s[0] != '/' && s != "*" {
		return phalanx.KindHTTPMalformed
	}
	if f.sensitive || (f.admin && status >= 400 && status < 500) {
		return phalanx.KindHTTPSensitive
	}
	switch {
	case status == 401:
		return phalanx.KindHTTPAuthFailed
	case status == 429:
		return phalanx.KindHTTPRateLimited
	case status == 414 || status == 431:
		return phalanx.KindHTTPMalformed
	case f.static:
		// A missing favicon, robots.txt or image is what browsers and
		// crawlers run into, not probing.
		return phalanx.KindHTTPRequest
	case status == 403:
		return phalanx.KindHTTPDenied
	case status == 400, status == 404, status == 405, status == 410, status == 444:
		return phalanx.KindHTTPNotFound
	}
	return phalanx.KindHTTPRequest
}

// normalize returns the request target folded for matching: percent
// escapes (and nginx's \xHH) decoded up to three times, '+' as a space in
// the query, backslashes as slashes, ASCII lowercased; and q, the index of
// the query ('?') or len. A target that needs none of this is returned as
// is, so that an ordinary request costs one scan. Otherwise the result
// lives in buf, which the caller keeps on its stack: it must not escape.
func normalize(buf []byte, s string) (string, int) {
	clean := true
	for i := 0; i < len(s); i++ {
		if dirty[s[i]] {
			clean = false
			break
		}
	}
	if clean {
		q := strings.IndexByte(s, '?')
		if q < 0 {
			q = len(s)
		}
		return s, q
	}
	if len(s) == 0 {
		return "", 0
	}
	b := buf[:len(s)] // decoding never lengthens
	q, w := -1, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '?' && q < 0:
			q = w
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		case c == '\\' && i+3 < len(s) && s[i+1] == 'x' && isHex(s[i+2]) && isHex(s[i+3]):
			c = unhex(s[i+2])<<4 | unhex(s[i+3])
			i += 3
		case c == '+' && q >= 0:
			c = ' '
		}
		b[w] = foldTab[c]
		w++
	}
	b = b[:w]
	if q < 0 {
		q = w
	}
	// Double (and triple) encoding: %252e, %%32%65.
	for pass := 0; pass < 2 && hasEscape(b); pass++ {
		n := len(decodeInPlace(b[:q]))
		rest := decodeInPlace(b[q:])
		copy(b[n:], rest)
		b, q = b[:n+len(rest)], n
	}
	if len(b) == 0 {
		return "", 0
	}
	return unsafe.String(&b[0], len(b)), q
}

// dirty marks the bytes that make normalize copy a target.
var dirty = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	t['%'], t['+'], t['\\'] = true, true, true
	return t
}()

// foldTab lowercases ASCII and turns a backslash into a slash.
var foldTab = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c) + 'a' - 'A'
	}
	t['\\'] = '/'
	return t
}()

// fold lowercases ASCII and turns a backslash into a slash.
func fold(c byte) byte { return foldTab[c] }

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func hasEscape(b []byte) bool {
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' && isHex(b[i+1]) && isHex(b[i+2]) {
			return true
		}
	}
	return false
}

func decodeInPlace(b []byte) []byte {
	w := 0
	for r := 0; r < len(b); r++ {
		c := b[r]
		if c == '%' && r+2 < len(b) && isHex(b[r+1]) && isHex(b[r+2]) {
			c = unhex(b[r+1])<<4 | unhex(b[r+2])
			r += 2
		}
		b[w] = fold(c)
		w++
	}
	return b[:w]
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f'
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}

// pathFlags is what the walk over the path's components found.
type pathFlags struct {
	exploit, sensitive, admin, static bool
}

// scanPath walks the components of the (normalised) path part s[:q].
func scanPath(s string, q int) (f pathFlags) {
	var prev string
	first := true
	for i := 0; i < q; {
		if s[i] == '/' {
			i++
			continue
		}
		j := i
		for j < q && s[j] != '/' {
			j++
		}
		comp := s[i:j]
		last := j >= q || strings.TrimLeft(s[j:q], "/") == ""
		component(&f, prev, comp, first, last, j < q)
		if f.exploit {
			return f
		}
		prev, first, i = comp, false, j
	}
	return f
}

// component classifies one path component; prev is the one before it.
func component(f *pathFlags, prev, c string, first, last, dir bool) {
	if c[0] == '.' {
		switch {
		case c == ".":
		case strings.HasPrefix(c, ".."), c == ".;":
			f.exploit = true // traversal, including Tomcat's "..;"
		case c == ".well-known":
			f.static = true // ACME, security.txt, app links
		default:
			f.sensitive = true // .env, .git, .htpasswd, .aws, .ssh, ...
		}
		return
	}
	switch prev {
	case "etc":
		switch c {
		case "passwd", "shadow", "group", "groups", "hosts", "issue", "hostname":
			f.exploit = true
			return
		}
	case "bin":
		switch c {
		case "sh", "bash", "busybox", "dash", "zsh":
			f.exploit = true
			return
		}
	case "proc":
		if c == "self" {
			f.exploit = true
			return
		}
	case "actuator":
		switch c {
		case "env", "gateway", "jolokia", "restart", "shutdown":
			f.exploit = true // Spring Boot actuator abuse
			return
		case "heapdump", "logfile", "configprops", "threaddump", "mappings", "trace", "httptrace":
			f.sensitive = true
			return
		}
	case "manager":
		if c == "html" || c == "text" {
			f.admin = true // Tomcat manager
		}
	case "phpunit", "util":
		// /vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php
		if c == "bash" {
			f.exploit = true // /mgmt/tm/util/bash: F5 BIG-IP iControl (CVE-2022-1388)
			return
		}
	}
	switch c {
	// Exploit targets of known CVEs and IoT botnets.
	case "eval-stdin.php", "boaform", "hnap1", "gponform", "_ignition", "wls-wsat", "_async",
		"jmxinvokerservlet", "invokerservlet", "ztp_gate.php", "win.ini", "boot.ini", "system.ini",
		"cmd.exe", "powershell.exe", "php-cgi.exe", "connector.minimal.php", "getcfg.php":
		f.exploit = true
		return
	// Secrets, backups, server and admin pages.
	case "wp-login.php", "wp-signup.php", "setup-config.php", "xmlrpc.php.bak",
		"server-status", "server-info", "phpinfo.php", "info.php", "php_info.php", "test.php.bak",
		"web.config", "appsettings.json", "sftp-config.json", "credentials.json", "secrets.json",
		"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "docker-compose.yml", "docker-compose.yaml",
		"laravel.log", "elmah.axd", "trace.axd", "adminer.php", "adminer", "pma", "myadmin", "mysqladmin",
		"sqladmin", "dbadmin", "websql", "phpminiadmin.php", "config.php.bak", "config.inc.php",
		"localsettings.php.bak", "+cscoe+", "database.yml", "wallet.dat", "id_rsa.pub", "filezilla.xml",
		"sitemanager.xml", "ws_ftp.ini", "winscp.ini", "xmlrpc.php", "wlwmanifest.xml":
		f.sensitive = true
		return
	case "administrator", "jmx-console", "web-console", "admin-console", "webadmin", "cpanel", "whm",
		"plesk", "solr", "jenkins", "owa", "ecp", "remote", "vpn", "sslvpn", "dana-na":
		if first {
			f.admin = true
		}
	case "robots.txt", "favicon.ico", "humans.txt", "ads.txt", "app-ads.txt", "security.txt",
		"crossdomain.xml", "browserconfig.xml", "site.webmanifest", "manifest.json":
		f.static = true
		return
	}
	switch {
	case strings.HasPrefix(c, "phpmyadmin"), strings.HasPrefix(c, "wp-config"):
		f.sensitive = true
		return
	case strings.HasPrefix(c, "sitemap") && strings.HasSuffix(c, ".xml"),
		strings.HasPrefix(c, "apple-touch-icon"), strings.HasPrefix(c, "android-chrome"):
		f.static = true
		return
	case c[len(c)-1] == '~':
		f.sensitive = true // editor backup
		return
	}
	if dir && !last {
		return
	}
	dot := strings.LastIndexByte(c, '.')
	if dot <= 0 {
		return
	}
	stem, ext := c[:dot], c[dot+1:]
	switch ext {
	case "sql", "bak", "old", "orig", "swp", "swo", "save", "backup", "bkp", "dump", "sqlite", "db", "mdb", "pem", "key", "ovpn", "kdbx", "pfx", "p12":
		f.sensitive = true
	case "gz", "zip", "tar", "tgz", "rar", "7z", "bz2", "xz":
		if strings.Contains(stem, ".sql") {
			f.sensitive = true
		} else if first && backupName(strings.TrimSuffix(stem, ".tar")) {
			f.sensitive = true // a backup of the site root
		}
	case "php", "php5", "php7", "phtml", "asp", "aspx", "jsp":
		if shellName(stem) {
			f.exploit = true // a web shell left by an earlier compromise
		}
	case "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "ico", "svg", "webp", "avif", "bmp",
		"woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "ogg", "wav", "m4a", "txt", "pdf":
		f.static = true
	}
}

// backupName reports whether an archive at the site root is named like a
// backup of the site.
func backupName(s string) bool {
	switch s {
	case "backup", "backups", "back", "bak", "www", "wwwroot", "site", "website", "web", "html",
		"public_html", "htdocs", "httpdocs", "db", "database", "dump", "data", "archive", "old", "new",
		"temp", "tmp", "test", "1", "123", "admin", "root", "home", "src", "source", "code", "app",
		"sql", "mysql", "files", "wordpress", "wp", "release", "latest", "full":
		return true
	}
	return false
}

// shellName reports whether a script name is a well-known web shell.
func shellName(s string) bool {
	switch s {
	case "c99", "c100", "r57", "wso", "wso25", "wso2.5", "b374k", "webshell", "cmd", "sh3ll", "alfa",
		"alfashell", "alfa-rex", "alfacgiapi", "indoxploit", "priv8", "phpspy", "xleet", "leafmailer",
		"filesman", "madspot", "madspotshell", "k2ll33d", "r00t", "backdoor", "simple-backdoor",
		"uploadshell", "bypass", "0byte", "hacked", "haxor", "fox", "mini", "marijuana", "wp-shell",
		"gel4y", "chitoge", "zeroshell", "angel", "lufix", "ghost":
		return true
	}
	return strings.HasSuffix(s, "shell") || strings.HasSuffix(s, "_shell")
}

// Character classes that trigger the text checks.
const (
	chLt = 1 << iota
	chParen
	chQuote
	chDollar
	chCmd // ; | `
	chSpace
	chHigh // a byte >= 0x80: overlong UTF-8 dots and slashes
	chPct  // an escape left after decoding: %u002e
	chEq
	chColon
	chComma
)

var charClass = func() (t [256]uint16) {
	t['<'] = chLt
	t['('] = chParen
	t['\''] = chQuote
	t['"'] = chQuote
	t['$'] = chDollar
	t[';'] = chCmd
	t['|'] = chCmd
	t['`'] = chCmd
	t[' '] = chSpace
	t['\t'] = chSpace
	t['\n'] = chSpace
	t['\r'] = chSpace
	t['*'] = chSpace // SQL comments as spaces
	t['%'] = chPct
	t['='] = chEq
	t[':'] = chColon
	t[','] = chComma
	for c := 0x80; c < 0x100; c++ {
		t[c] = chHigh
	}
	return t
}()

// exploitText looks for payloads in the whole normalised target: SQL
// injection, XSS, command injection, template/JNDI injection, wrappers,
// traversal in the query. Each family is only looked for when a character
// it needs is present, so that an ordinary target costs one scan.
func exploitText(s string, q int) bool {
	var m uint16
	for i := 0; i < len(s); i++ {
		m |= charClass[s[i]]
	}
	query := s[q:]
	if m == 0 && len(query) == 0 {
		return false
	}
	if m&chLt != 0 && xssTag(s) {
		return true
	}
	if m&chParen != 0 && callPayload(s) {
		return true
	}
	if m&chQuote != 0 && sqlQuote(s) {
		return true
	}
	if m&chDollar != 0 && (strings.Contains(s, "${") || strings.Contains(s, "$(")) {
		return true
	}
	if m&chCmd != 0 && cmdInjection(s) {
		return true
	}
	if m&chHigh != 0 && (strings.Contains(s, "\xc0\xae") || strings.Contains(s, "\xc0\xaf") ||
		strings.Contains(s, "\xe0\x80\xae") || strings.Contains(s, "\xc1\x9c")) {
		return true
	}
	if m&chPct != 0 && (strings.Contains(s, "%u002e") || strings.Contains(s, "%u2215") || strings.Contains(s, "%u2216")) {
		return true
	}
	if m&(chSpace|chParen) != 0 && unionSelect(s) {
		return true
	}
	if m&chEq != 0 && eventHandler(s) {
		return true
	}
	if m&chColon != 0 {
		for _, w := range [...]string{"javascript:", "vbscript:", "data:text/html", "php://", "phar://",
			"expect://", "zip://", "file:///", "gopher://", "dict://"} {
			if strings.Contains(s, w) {
				return true
			}
		}
	}
	if m&chComma != 0 && strings.Contains(s, ",null,null") {
		return true
	}
	if len(query) > 0 && queryPayload(query) {
		return true
	}
	return false
}

// queryPayload looks for payload words in the query. Each word holds a
// marker byte ('/', '.', '_', '@', ' '); a query without the marker skips
// that group, so ordinary "page=2&sort=price" costs one scan.
func queryPayload(q string) bool {
	var slash, dot, under, at, space bool
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case '/':
			slash = true
		case '.':
			dot = true
		case '_':
			under = true
		case '@':
			at = true
		case ' ':
			space = true
		}
	}
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(q, w) {
				return true
			}
		}
		return false
	}
	return slash && has("../", "/etc/passwd", "/etc/shadow", "/proc/self/", "/bin/sh", "/bin/bash", "/invokefunction") ||
		dot && has("win.ini", "class.module.", "cmd.exe") ||
		under && has("information_schema", "xp_cmdshell", "call_user_func", "allow_url_include", "auto_prepend_file", "base64_decode") ||
		at && has("@@version") ||
		space && has("waitfor delay", "wget http", "curl http") ||
		// A shell command in a cmd= parameter (router and camera CGIs); a
		// search for "rm -rf" is not one.
		has("cmd=rm ", "cmd=cd ", "cmd=wget", "cmd=curl", "cmd=busybox", "cmd=chmod", "cmd=sh ", "cmd=tftp") ||
		at && slash && has("autodiscover.json?@") // ProxyShell (CVE-2021-34473)
}

// xssTag reports an HTML tag that has no business in a URL.
func xssTag(s string) bool {
	for i := strings.IndexByte(s, '<'); i >= 0; {
		j := i + 1
		if j < len(s) && s[j] == '/' {
			j++
		}
		k := j
		for k < len(s) && s[k] >= 'a' && s[k] <= 'z' {
			k++
		}
		if k == len(s) || !isWordByte(s[k]) {
			switch s[j:k] {
			case "script", "img", "svg", "iframe", "frame", "frameset", "body", "input", "table", "object",
				"embed", "style", "meta", "div", "a", "p", "br", "link", "form", "math", "details",
				"video", "audio", "marquee", "base", "applet", "isindex", "xss", "image", "textarea",
				"button", "select", "keygen", "html", "xml", "h1", "b", "i", "u", "span", "template":
				return true
			}
		}
		n := strings.IndexByte(s[i+1:], '<')
		if n < 0 {
			break
		}
		i += 1 + n
	}
	return false
}

// callPayload reports a function call that belongs to SQL injection, XSS
// or PHP code injection ("sleep(", "alert(", "system("), and shellshock.
func callPayload(s string) bool {
	if strings.Contains(s, "() {") || strings.Contains(s, "(){") {
		return true
	}
	for i := strings.IndexByte(s, '('); i >= 0; {
		j := i
		for j > 0 && isWordByte(s[j-1]) {
			j--
		}
		w := s[j:i]
		switch w {
		// Only names that have no business in a URL: "floor(", "exp(" or
		// "version(" also appear in wiki titles and searches.
		case "sleep", "pg_sleep", "benchmark", "load_file", "substr", "substring", "char", "chr", "concat",
			"concat_ws", "group_concat", "extractvalue", "updatexml", "utl_inaddr", "dbms_pipe",
			"randomblob", "make_set", "alert", "prompt", "confirm", "eval", "fromcharcode",
			"system", "passthru", "shell_exec", "exec", "popen", "proc_open", "assert", "phpinfo",
			"base64_decode", "file_get_contents", "file_put_contents":
			return true
		}
		if strings.HasSuffix(w, "char") || strings.HasSuffix(w, "sleep") {
			return true // selectchar(, dbms_lock.sleep(
		}
		n := strings.IndexByte(s[i+1:], '(')
		if n < 0 {
			break
		}
		i += 1 + n
	}
	return false
}

// sqlQuote reports a single quote that closes a string and continues
// with SQL: "' or 1=1", "' and '", "'--", "' union". Double quotes are
// left out: a search for `"red shoes" or boots` is not an attack.
func sqlQuote(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '\'' {
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == ' ' || s[j] == ')') {
			j++
		}
		r := s[j:]
		switch {
		case strings.HasPrefix(r, "--"), strings.HasPrefix(r, "#"), strings.HasPrefix(r, "/*"),
			strings.HasPrefix(r, ";"):
			return true
		case wordAt(r, "or"), wordAt(r, "and"), wordAt(r, "union"), wordAt(r, "xor"),
			wordAt(r, "having"), wordAt(r, "order"), wordAt(r, "select"), wordAt(r, "waitfor"):
			return true
		}
	}
	return strings.Contains(s, " or 1=1") || strings.Contains(s, " or '1'='1")
}

// wordAt reports whether s starts with the word w followed by a
// non-letter (or is w).
func wordAt(s, w string) bool {
	return strings.HasPrefix(s, w) && (len(s) == len(w) || !isLetter(s[len(w)]))
}

// unionSelect finds "union [all|distinct] select" with any run of
// spaces, comments or parentheses between the words.
func unionSelect(s string) bool {
	for off := 0; ; {
		i := strings.Index(s[off:], "union")
		if i < 0 {
			return false
		}
		off += i + len("union")
		r, ok := skipSQLSpace(s[off:])
		if !ok {
			// An unterminated comment: no later "union" can be followed by
			// anything else, and searching again would be quadratic.
			return false
		}
		if wordAt(r, "all") {
			r, ok = skipSQLSpace(r[3:])
		} else if wordAt(r, "distinct") {
			r, ok = skipSQLSpace(r[8:])
		}
		if ok && wordAt(r, "select") {
			return true
		}
	}
}

const maxSQLComment = 64

// skipSQLSpace skips what SQL takes for a space; ok is false at an
// unterminated comment.
func skipSQLSpace(s string) (rest string, ok bool) {
	for len(s) > 0 {
		switch {
		case s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' || s[0] == '(' || s[0] == '+':
			s = s[1:]
		case strings.HasPrefix(s, "/*"):
			// Comments used as spaces are short; bounding the look-ahead
			// keeps "union/*union/*...*/" linear.
			e := strings.Index(s[2:min(len(s), 2+maxSQLComment)], "*/")
			if e < 0 {
				return "", len(s) <= 2+maxSQLComment
			}
			s = s[e+4:]
		default:
			return s, true
		}
	}
	return s, true
}

// cmdInjection reports a shell separator followed by a command.
func cmdInjection(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ';' && s[i] != '|' && s[i] != '`' {
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == ' ' || s[j] == '|' || s[j] == '&') {
			j++
		}
		k := j
		for k < len(s) && isLetter(s[k]) {
			k++
		}
		if k == j || (k < len(s) && s[k] != ' ' && s[k] != ';' && s[k] != '|' && s[k] != '`' && s[k] != '$' && s[k] != '&' && s[k] != ')') {
			continue
		}
		switch s[j:k] {
		case "wget", "curl", "id", "cat", "uname", "sh", "bash", "nc", "ncat", "rm", "echo", "chmod",
			"busybox", "ping", "whoami", "ls", "tftp", "python", "perl", "powershell", "nslookup", "sleep", "cd":
			return true
		}
	}
	return false
}

// eventHandler finds an inline event handler attribute ("onerror=").
func eventHandler(s string) bool {
	for i := strings.IndexByte(s, '='); i >= 0; {
		j := i
		for j > 0 && s[j-1] == ' ' {
			j--
		}
		k := j
		for k > 0 && isLetter(s[k-1]) {
			k--
		}
		switch s[k:j] {
		case "onerror", "onload", "onmouseover", "onmouseenter", "onfocus", "onblur", "onclick",
			"onanimationstart", "ontoggle", "onpageshow", "onbegin", "onstart", "onresize", "onscroll",
			"onpointerover", "onwheel", "oninput", "onchange", "onsubmit", "onkeydown", "onkeyup", "onafterprint":
			if k == 0 || !isLetter(s[k-1]) {
				return true
			}
		}
		n := strings.IndexByte(s[i+1:], '=')
		if n < 0 {
			break
		}
		i += 1 + n
	}
	return false
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isWordByte(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' }
