package httpguard

import (
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func clientAddr(g *Guard, remote string, headers map[string][]string) netip.Addr {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = remote
	for k, vs := range headers {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	return g.ClientAddr(r)
}

func TestClientAddr(t *testing.T) {
	g := New(nil, Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
		netip.MustParsePrefix("::ffff:172.16.0.0/108"), // a mapped prefix means its v4 form
	}}, nil)
	h := func(kv ...string) map[string][]string {
		m := map[string][]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = append(m[kv[i]], kv[i+1])
		}
		return m
	}
	for _, tc := range []struct {
		name, remote string
		headers      map[string][]string
		want         string
	}{
		{"no proxy", "203.0.113.1:5555", nil, "203.0.113.1"},
		{"spoofed XFF from an untrusted client", "203.0.113.1:5555", h("X-Forwarded-For", "192.0.2.99"), "203.0.113.1"},
		{"spoofed Forwarded from an untrusted client", "203.0.113.1:5555", h("Forwarded", "for=192.0.2.99"), "203.0.113.1"},
		{"spoofed X-Real-IP from an untrusted client", "203.0.113.1:5555", h("X-Real-IP", "192.0.2.99"), "203.0.113.1"},
		{"trusted proxy", "10.0.0.1:80", h("X-Forwarded-For", "203.0.113.1"), "203.0.113.1"},
		{"client prepends a lie", "10.0.0.1:80", h("X-Forwarded-For", "192.0.2.99, 203.0.113.1"), "203.0.113.1"},
		{"two trusted hops", "10.0.0.1:80", h("X-Forwarded-For", "192.0.2.99, 203.0.113.1, 10.9.9.9"), "203.0.113.1"},
		{"hops in several lines", "10.0.0.1:80", h("X-Forwarded-For", "192.0.2.99", "X-Forwarded-For", "203.0.113.1, 10.1.1.1", "X-Forwarded-For", "10.2.2.2"), "203.0.113.1"},
		{"all trusted", "10.0.0.1:80", h("X-Forwarded-For", "10.3.3.3, 10.2.2.2"), "10.3.3.3"},
		{"garbage written by a trusted hop", "10.0.0.1:80", h("X-Forwarded-For", "203.0.113.1, nonsense, 10.2.2.2"), "10.2.2.2"},
		{"unknown from a trusted hop", "10.0.0.1:80", h("X-Forwarded-For", "unknown"), "10.0.0.1"},
		{"empty XFF", "10.0.0.1:80", h("X-Forwarded-For", ""), "10.0.0.1"},
		{"XFF with port", "10.0.0.1:80", h("X-Forwarded-For", "203.0.113.1:4711"), "203.0.113.1"},
		{"XFF v6 with port", "10.0.0.1:80", h("X-Forwarded-For", "[2001:db8::7]:4711"), "2001:db8::7"},
		{"XFF bracketed v6", "10.0.0.1:80", h("X-Forwarded-For", "[2001:db8::7]"), "2001:db8::7"},
		{"XFF mapped v4", "10.0.0.1:80", h("X-Forwarded-For", "::ffff:203.0.113.1"), "203.0.113.1"},
		{"v6 proxy", "[2001:db8:ffff::1]:443", h("X-Forwarded-For", "2001:db8:1::1"), "2001:db8:1::1"},
		{"mapped peer on a dual-stack socket", "[::ffff:10.0.0.1]:80", h("X-Forwarded-For", "203.0.113.1"), "203.0.113.1"},
		{"mapped trusted prefix", "172.16.0.5:80", h("X-Forwarded-For", "203.0.113.1"), "203.0.113.1"},
		{"peer zone dropped", "[fe80::1%eth0]:80", nil, "fe80::1"},
		{"XFF preferred to Forwarded", "10.0.0.1:80", h("X-Forwarded-For", "203.0.113.1", "Forwarded", "for=192.0.2.99"), "203.0.113.1"},
		{"Forwarded", "10.0.0.1:80", h("Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"), "192.0.2.60"},
		{"Forwarded v6 quoted with port", "10.0.0.1:80", h("Forwarded", `for="[2001:db8:cafe::17]:4711"`), "2001:db8:cafe::17"},
		{"Forwarded chain", "10.0.0.1:80", h("Forwarded", "for=192.0.2.99, for=192.0.2.43, for=10.1.1.1"), "192.0.2.43"},
		{"Forwarded chain in lines", "10.0.0.1:80", h("Forwarded", "for=192.0.2.99", "Forwarded", "For=\"192.0.2.43\";proto=https"), "192.0.2.43"},
		{"Forwarded obfuscated", "10.0.0.1:80", h("Forwarded", "for=_hidden, for=10.1.1.1"), "10.1.1.1"},
		{"Forwarded element without for", "10.0.0.1:80", h("Forwarded", "for=192.0.2.99, proto=https"), "10.0.0.1"},
		{"Forwarded unterminated quote swallows the proxy's element", "10.0.0.1:80", h("Forwarded", `for="192.0.2.99, for=192.0.2.43`), "10.0.0.1"},
		{"X-Real-IP from a trusted proxy", "10.0.0.1:80", h("X-Real-IP", "203.0.113.1"), "203.0.113.1"},
		{"no RemoteAddr", "", nil, "invalid IP"},
	} {
		got := clientAddr(g, tc.remote, tc.headers)
		if got.String() != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestSplitForwarded(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil means malformed
	}{
		{"for=192.0.2.60;proto=http;by=203.0.113.43", []string{"192.0.2.60"}},
		{`for="_gazonk"`, []string{"_gazonk"}},
		{`For="[2001:db8:cafe::17]:4711"`, []string{"[2001:db8:cafe::17]:4711"}},
		{"for=192.0.2.43, for=198.51.100.17", []string{"192.0.2.43", "198.51.100.17"}},
		{"for=a,,for=b ,", []string{"a", "b"}},
		{"proto=https", []string{""}},
		{`for="a\"b"`, []string{`a"b`}},
		{`for="a, for=b`, nil},
		{"for", nil},
		{"=x", nil},
		{"for=a b", nil},
		{"for=a;;by=b", []string{"a"}},
		{"for=\"x\"y", nil},
	} {
		got, ok := splitForwarded(tc.in)
		if tc.want == nil {
			if ok {
				t.Errorf("%q: got %q, want malformed", tc.in, got)
			}
			continue
		}
		if !ok || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q %v, want %q", tc.in, got, ok, tc.want)
		}
	}
}

// The fuzzed text is what a client sent; a trusted proxy then appended the
// client's real address and a second trusted proxy its own. Whatever the
// client wrote, the guard must land on the real address or, if the
// client's text broke the header, on a trusted hop: never on anything the
// client wrote.
func fuzzTrusted() *Guard {
	return New(nil, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, nil)
}

func checkLanding(t *testing.T, got netip.Addr) {
	switch got.String() {
	case "203.0.113.9", "10.0.0.1", "10.0.0.2":
	default:
		t.Fatalf("landed on %s, an address the client wrote", got)
	}
}

func FuzzXFF(f *testing.F) {
	for _, s := range []string{"", "192.0.2.1", "192.0.2.1, 10.0.0.5", "[::1]:80", "unknown", ",,,", "10.0.0.3, 2001:db8::1"} {
		f.Add(s)
	}
	g := fuzzTrusted()
	f.Fuzz(func(t *testing.T, s string) {
		// Same line: the proxy appended to the client's header.
		checkLanding(t, clientAddr(g, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {s + ", 203.0.113.9, 10.0.0.2"}}))
		// Own line.
		checkLanding(t, clientAddr(g, "10.0.0.1:80", map[string][]string{"X-Forwarded-For": {s, "203.0.113.9, 10.0.0.2"}}))
		// From an untrusted peer, nothing in the header counts.
		if got := clientAddr(g, "203.0.113.9:80", map[string][]string{"X-Forwarded-For": {s}}); got.String() != "203.0.113.9" {
			t.Fatalf("untrusted peer: got %s", got)
		}
	})
}

func FuzzForwarded(f *testing.F) {
	for _, s := range []string{"", "for=192.0.2.1", `for="[2001:db8::1]:80";proto=https`, `for="`, "for=a;by=b, for=c", `for="\`, ";,;,"} {
		f.Add(s)
	}
	g := fuzzTrusted()
	f.Fuzz(func(t *testing.T, s string) {
		checkLanding(t, clientAddr(g, "10.0.0.1:80", map[string][]string{"Forwarded": {s + ", for=203.0.113.9, for=10.0.0.2"}}))
		checkLanding(t, clientAddr(g, "10.0.0.1:80", map[string][]string{"Forwarded": {s, "for=203.0.113.9;proto=https, for=\"10.0.0.2\""}}))
		if fors, ok := splitForwarded(s); ok && strings.Count(s, ",")+1 < len(fors) {
			t.Fatalf("%q: %d elements from %d commas", s, len(fors), strings.Count(s, ","))
		}
	})
}
