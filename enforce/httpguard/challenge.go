package httpguard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"math/bits"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The challenge is stateless, so that the guard keeps nothing per visitor:
// the token the page is given is "unix-seconds.MAC(addr, seconds)", the
// browser finds a nonce such that SHA-256(token ":" nonce) starts with
// Difficulty zero bits, and the answer earns a pass cookie
// "expiry.MAC(addr, expiry)". Both MACs bind the client address, so a
// token or cookie carried to another address is worth nothing.

// challengeTTL is how long a challenge may take to solve: long enough for
// a slow phone, short enough that a stockpile of solved tokens goes stale.
const challengeTTL = 5 * time.Minute

// maxChallengeBody bounds the answer form: token, nonce and return path.
const maxChallengeBody = 4 << 10

func randomBytes(n int) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error since Go 1.24.
	_, _ = rand.Read(b)
	return b
}

func (g *Guard) mac(kind string, addr netip.Addr, unix int64) string {
	m := hmac.New(sha256.New, g.cfg.Secret)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	b, _ := addr.MarshalBinary()
	m.Write(b)
	m.Write([]byte{0})
	m.Write(strconv.AppendInt(nil, unix, 10))
	// 128 bits is ample for a MAC that expires within hours, and keeps the
	// token inside one SHA-256 block for the browser.
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// signed splits "unix.mac" and checks the MAC for addr.
func (g *Guard) signed(kind, s string, addr netip.Addr) (time.Time, bool) {
	ts, sum, ok := strings.Cut(s, ".")
	if !ok || len(ts) > 12 {
		return time.Time{}, false
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || unix < 0 {
		return time.Time{}, false
	}
	if !hmac.Equal([]byte(sum), []byte(g.mac(kind, addr, unix))) {
		return time.Time{}, false
	}
	return time.Unix(unix, 0), true
}

// validPass reports whether r carries a pass cookie for addr that has not
// expired.
func (g *Guard) validPass(r *http.Request, addr netip.Addr) bool {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return false
	}
	exp, ok := g.signed("pass", c.Value, addr)
	if !ok {
		return false
	}
	now := g.clock.Now()
	// The upper bound refuses a cookie minted under a longer CookieTTL
	// than the one in force now.
	return exp.After(now) && !exp.After(now.Add(g.cfg.CookieTTL+time.Second))
}

func (g *Guard) newChallenge(addr netip.Addr) string {
	unix := g.clock.Now().Unix()
	return strconv.FormatInt(unix, 10) + "." + g.mac("challenge", addr, unix)
}

// solved reports whether nonce answers token for addr.
func (g *Guard) solved(token, nonce string, addr netip.Addr) bool {
	if len(nonce) == 0 || len(nonce) > 20 {
		return false
	}
	for i := 0; i < len(nonce); i++ {
		if nonce[i] < '0' || nonce[i] > '9' {
			return false
		}
	}
	issued, ok := g.signed("challenge", token, addr)
	if !ok {
		return false
	}
	now := g.clock.Now()
	if issued.After(now.Add(time.Second)) || now.Sub(issued) > challengeTTL {
		return false
	}
	return leadingZeros(sha256.Sum256([]byte(token+":"+nonce))) >= g.cfg.Difficulty
}

func leadingZeros(h [32]byte) int {
	n := 0
	for _, b := range h {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// serveChallenge answers /.phalanx/challenge: GET shows the page (the
// target of nginx's error_page 401), POST checks an answer.
func (g *Guard) serveChallenge(w http.ResponseWriter, r *http.Request, addr netip.Addr) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		g.stats.challenged.Add(1)
		g.writeChallengePage(w, r, addr, http.StatusOK, g.returnPath(r))
	case http.MethodPost:
		g.checkAnswer(w, r, addr)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		plain(w, http.StatusMethodNotAllowed, "Method not allowed.\n")
	}
}

// returnPath is where to go after solving a challenge shown by GET: the
// original URI nginx passes in X-Original-URI, else the r parameter.
func (g *Guard) returnPath(r *http.Request) string {
	if g.isTrusted(peerAddr(r.RemoteAddr)) {
		if u := r.Header.Get("X-Original-URI"); u != "" {
			return safeReturn(u)
		}
	}
	return safeReturn(r.URL.Query().Get("r"))
}

// safeReturn keeps a redirect on this site: a path, never "//host" or a
// scheme, which would make the guard an open redirector.
func safeReturn(p string) string {
	if p == "" || p[0] != '/' || len(p) > 2048 || strings.HasPrefix(p, "//") ||
		strings.HasPrefix(p, "/\\") || strings.HasPrefix(p, challengePath) {
		return "/"
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return "/"
		}
	}
	return p
}

func (g *Guard) checkAnswer(w http.ResponseWriter, r *http.Request, addr netip.Addr) {
	r.Body = http.MaxBytesReader(w, r.Body, maxChallengeBody)
	if err := r.ParseForm(); err != nil {
		g.stats.failed.Add(1)
		plain(w, http.StatusBadRequest, "Bad request: the challenge answer is malformed.\n")
		return
	}
	token, nonce := r.PostForm.Get("c"), r.PostForm.Get("n")
	back := safeReturn(r.PostForm.Get("r"))
	if !g.solved(token, nonce, addr) {
		g.stats.failed.Add(1)
		g.log.Debug("httpguard: challenge answer refused", "addr", addr)
		// A fresh page rather than a bare error: an honest browser whose
		// token went stale simply solves again.
		g.writeChallengePage(w, r, addr, http.StatusForbidden, back)
		return
	}
	g.stats.solved.Add(1)
	exp := g.clock.Now().Add(g.cfg.CookieTTL).Unix()
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: strconv.FormatInt(exp, 10) + "." + g.mac("pass", addr, exp),
		Path: "/", MaxAge: int(g.cfg.CookieTTL / time.Second), HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
	g.log.Debug("httpguard: challenge solved", "addr", addr)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (g *Guard) writeChallengePage(w http.ResponseWriter, r *http.Request, addr netip.Addr, code int, back string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// The page runs only its own inline script and posts only to itself.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	_ = challengePage.Execute(w, struct {
		Action, Token, Return string
		Difficulty            int
	}{challengePath, g.newChallenge(addr), safeReturn(back), g.cfg.Difficulty})
}

// challengePage carries its own SHA-256: crypto.subtle exists only in
// secure contexts, and a site behind the guard may be plain HTTP.
var challengePage = template.Must(template.New("challenge").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Checking your browser</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32em;margin:4em auto;padding:0 1em;color:#222}</style>
</head><body>
<h1>Checking your browser</h1>
<p id="s">Your browser is doing a short calculation to show it is not an automated attack. This takes a second.</p>
<noscript><p>This check needs JavaScript. Please enable it and reload the page.</p></noscript>
<form id="f" method="post" action="{{.Action}}">
<input type="hidden" name="c" value="{{.Token}}">
<input type="hidden" name="n" id="n" value="">
<input type="hidden" name="r" value="{{.Return}}">
</form>
<script>
(function(){
var T={{.Token}}, D={{.Difficulty}};
var K=[0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];
var W=new Array(64);
function sha(s){
var n=s.length,nb=((n+8)>>6)+1,m=new Array(nb*16),i,j;
for(i=0;i<m.length;i++)m[i]=0;
for(i=0;i<n;i++)m[i>>2]|=(s.charCodeAt(i)&255)<<(24-(i&3)*8);
m[n>>2]|=0x80<<(24-(n&3)*8);m[m.length-1]=n*8;
var h0=0x6a09e667,h1=0xbb67ae85,h2=0x3c6ef372,h3=0xa54ff53a,h4=0x510e527f,h5=0x9b05688c,h6=0x1f83d9ab,h7=0x5be0cd19;
for(j=0;j<m.length;j+=16){
var a=h0,b=h1,c=h2,d=h3,e=h4,f=h5,g=h6,h=h7,t1,t2,x,y;
for(i=0;i<64;i++){
if(i<16)W[i]=m[j+i];else{x=W[i-15];y=W[i-2];
W[i]=(((x>>>7|x<<25)^(x>>>18|x<<14)^(x>>>3))+((y>>>17|y<<15)^(y>>>19|y<<13)^(y>>>10))+W[i-7]+W[i-16])|0;}
t1=(h+((e>>>6|e<<26)^(e>>>11|e<<21)^(e>>>25|e<<7))+((e&f)^(~e&g))+K[i]+W[i])|0;
t2=(((a>>>2|a<<30)^(a>>>13|a<<19)^(a>>>22|a<<10))+((a&b)^(a&c)^(b&c)))|0;
h=g;g=f;f=e;e=(d+t1)|0;d=c;c=b;b=a;a=(t1+t2)|0;}
h0=(h0+a)|0;h1=(h1+b)|0;h2=(h2+c)|0;h3=(h3+d)|0;h4=(h4+e)|0;h5=(h5+f)|0;h6=(h6+g)|0;h7=(h7+h)|0;}
return [h0,h1,h2,h3,h4,h5,h6,h7];
}
function ok(w){var d=D,i=0,b;for(;d>0;i++,d-=32){b=d<32?d:32;if(b===32?w[i]!==0:(w[i]>>>(32-b))!==0)return false;}return true;}
var nonce=0;
function run(){
for(var k=0;k<20000;k++,nonce++){
if(ok(sha(T+":"+nonce))){document.getElementById("n").value=String(nonce);document.getElementById("f").submit();return;}}
setTimeout(run,0);}
if(typeof module!=="undefined"){module.exports={sha:sha,ok:ok};return;}
run();
})();
</script>
</body></html>
`))
