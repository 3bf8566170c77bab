package nft

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/internal/netnstest"
)

func newEnforcer(t testing.TB, ns string, never ...netip.Prefix) *Enforcer {
	t.Helper()
	e, err := New(Config{NetNS: ns}, never, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func ban(p string, d time.Duration) phalanx.Decision {
	return phalanx.Decision{Value: netip.MustParsePrefix(p), Type: phalanx.Ban, Duration: d, LastSeen: time.Now()}
}

// element is one set element as `nft -j` shows it.
type element struct {
	Val     string
	Timeout int
	Expires int
}

// kernelSets lists the elements of phalanx's sets inside ns, by set name.
func kernelSets(t testing.TB, ns string) map[string]map[string]element {
	t.Helper()
	out := netnstest.Run(t, "ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset")
	var doc struct {
		Nftables []struct {
			Set *struct {
				Family, Name, Table string
				Elem                []json.RawMessage
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j: %v\n%s", err, out)
	}
	sets := make(map[string]map[string]element)
	for _, o := range doc.Nftables {
		if o.Set == nil || o.Set.Table != "phalanx" {
			continue
		}
		m := make(map[string]element)
		for _, raw := range o.Set.Elem {
			var el struct {
				Elem struct {
					Val     json.RawMessage
					Timeout int
					Expires int
				}
			}
			if err := json.Unmarshal(raw, &el); err != nil {
				t.Fatalf("elem %s: %v", raw, err)
			}
			var v string
			var pfx struct {
				Prefix struct {
					Addr string
					Len  int
				}
				Range []string
			}
			if json.Unmarshal(el.Elem.Val, &v) != nil {
				if err := json.Unmarshal(el.Elem.Val, &pfx); err != nil {
					t.Fatalf("elem value %s: %v", el.Elem.Val, err)
				}
				if pfx.Range != nil {
					v = strings.Join(pfx.Range, "-")
				} else {
					v = fmt.Sprintf("%s/%d", pfx.Prefix.Addr, pfx.Prefix.Len)
				}
			}
			m[v] = element{Val: v, Timeout: el.Elem.Timeout, Expires: el.Elem.Expires}
		}
		sets[o.Set.Name] = m
	}
	return sets
}

func TestApplyShowsElementsWithTimeouts(t *testing.T) {
	netnstest.Need(t, "nftables tests", "ip", "nft")
	ns := netnstest.New(t, "phx-test-")
	e := newEnforcer(t, ns)
	ds := []phalanx.Decision{
		ban("192.0.2.7/32", time.Hour),
		ban("198.51.100.0/24", 2*time.Hour),
		ban("2001:db8::1/128", time.Hour),
		ban("2001:db8:1::/48", time.Hour),
		{Value: netip.MustParsePrefix("203.0.113.9/32"), Type: phalanx.Captcha, Duration: time.Hour, LastSeen: time.Now()},
	}
	if err := e.Apply(ds); err != nil {
		t.Fatal(err)
	}
	sets := kernelSets(t, ns)
	for set, want := range map[string][]string{
		setAddrV4:  {"192.0.2.7"},
		setRangeV4: {"198.51.100.0/24"},
		setAddrV6:  {"2001:db8::1"},
		setRangeV6: {"2001:db8:1::/48"},
	} {
		if len(sets[set]) != len(want) {
			t.Errorf("%s = %v, want %v", set, sets[set], want)
		}
		for _, w := range want {
			el, ok := sets[set][w]
			if !ok {
				t.Errorf("%s lacks %s: %v", set, w, sets[set])
				continue
			}
			if el.Timeout < 3500 || el.Expires <= 0 {
				t.Errorf("%s %s: timeout %d s, expires %d s; want about an hour", set, w, el.Timeout, el.Expires)
			}
		}
	}
	if el := sets[setRangeV4]["198.51.100.0/24"]; el.Timeout < 7100 {
		t.Errorf("range timeout %d s, want about 2 h", el.Timeout)
	}
	rules := netnstest.Run(t, "ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "phalanx", "input")
	for _, w := range []string{"hook input priority -200", "ip saddr @addr-v4", "ip saddr @range-v4", "ip6 saddr @addr-v6", "ip6 saddr @range-v6", "drop"} {
		if !strings.Contains(rules, w) {
			t.Errorf("input chain lacks %q:\n%s", w, rules)
		}
	}
	// Applying again changes nothing and does not fail.
	if err := e.Apply(ds); err != nil {
		t.Fatal(err)
	}
}

// v4 merges the IPv4 sets' elements.
func v4(sets map[string]map[string]element) map[string]element {
	m := make(map[string]element)
	for _, s := range []string{setAddrV4, setRangeV4} {
		for k, v := range sets[s] {
			m[k] = v
		}
	}
	return m
}

// A table of the old layout (ban-v4 and ban-v6 interval sets for every
// ban) is migrated: its sets and rules go, the four sets take over.
func TestMigratesOldLayout(t *testing.T) {
	netnstest.Need(t, "nftables tests", "ip", "nft")
	ns := netnstest.New(t, "phx-test-")
	nft := func(args ...string) { netnstest.Run(t, append([]string{"ip", "netns", "exec", ns, "nft"}, args...)...) }
	nft("add", "table", "inet", "phalanx")
	nft("add", "set", "inet", "phalanx", "ban-v4", "{ type ipv4_addr; flags interval,timeout; }")
	nft("add", "set", "inet", "phalanx", "ban-v6", "{ type ipv6_addr; flags interval,timeout; }")
	nft("add", "chain", "inet", "phalanx", "input", "{ type filter hook input priority -200; policy accept; }")
	nft("add", "chain", "inet", "phalanx", "forward", "{ type filter hook forward priority -200; policy accept; }")
	for _, ch := range []string{"input", "forward"} {
		nft("add", "rule", "inet", "phalanx", ch, "ip", "saddr", "@ban-v4", "counter", "drop")
		nft("add", "rule", "inet", "phalanx", ch, "ip6", "saddr", "@ban-v6", "counter", "drop")
	}
	nft("add", "element", "inet", "phalanx", "ban-v4", "{ 192.0.2.7 timeout 1h, 198.51.100.0/24 timeout 1h }")
	e := newEnforcer(t, ns)
	if err := e.Apply([]phalanx.Decision{ban("192.0.2.7/32", time.Hour), ban("198.51.100.0/24", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sets := kernelSets(t, ns)
	if _, ok := sets["ban-v4"]; ok || len(sets) != 4 {
		t.Errorf("sets after migration: %v", sets)
	}
	if _, ok := sets[setAddrV4]["192.0.2.7"]; !ok || len(sets[setRangeV4]) != 1 {
		t.Errorf("elements after migration: %v", sets)
	}
	out := netnstest.Run(t, "ip", "netns", "exec", ns, "nft", "list", "table", "inet", "phalanx")
	if strings.Contains(out, "ban-v") || strings.Contains(out, "hook forward") || strings.Count(out, "drop") != 4 {
		t.Errorf("table after migration:\n%s", out)
	}
}

// Reinstalling (a restart) keeps the elements already in the sets.
func TestRestartKeepsElements(t *testing.T) {
	netnstest.Need(t, "nftables tests", "ip", "nft")
	ns := netnstest.New(t, "phx-test-")
	e := newEnforcer(t, ns)
	if err := e.Apply([]phalanx.Decision{ban("192.0.2.7/32", time.Hour), ban("198.51.100.0/24", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e2 := newEnforcer(t, ns)
	if err := e2.install(); err != nil {
		t.Fatal(err)
	}
	if got := v4(kernelSets(t, ns)); len(got) != 2 {
		t.Errorf("after reinstall: %v", got)
	}
}

func TestLiftRemovesElement(t *testing.T) {
	netnstest.Need(t, "nftables tests", "ip", "nft")
	ns := netnstest.New(t, "phx-test-")
	e := newEnforcer(t, ns)
	a, b := ban("192.0.2.7/32", time.Hour), ban("198.51.100.0/24", time.Hour)
	if err := e.Apply([]phalanx.Decision{a, b}); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply([]phalanx.Decision{b}); err != nil {
		t.Fatal(err)
	}
	sets := kernelSets(t, ns)
	if len(sets[setAddrV4]) != 0 || len(sets[setRangeV4]) != 1 {
		t.Errorf("after lifting 192.0.2.7: %v", sets)
	}
}

func TestReconcileAndNever(t *testing.T) {
	netnstest.Need(t, "nftables tests", "ip", "nft")
	ns := netnstest.New(t, "phx-test-")
	never := []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("172.16.0.0/12")}
	e := newEnforcer(t, ns, never...)
	if err := e.Apply(nil); err != nil {
		t.Fatal(err)
	}
	// Someone (or a previous run) left an element the decisions lack.
	netnstest.Run(t, "ip", "netns", "exec", ns, "nft", "add", "element", "inet", "phalanx", setAddrV4, "{ 192.0.2.99 timeout 1h }")
	netnstest.Run(t, "ip", "netns", "exec", ns, "nft", "add", "element", "inet", "phalanx", setRangeV4, "{ 198.18.0.0/16 timeout 1h }")
	ds := []phalanx.Decision{
		ban("192.0.2.7/32", time.Hour),
		ban("10.1.2.3/32", time.Hour),   // allowlisted
		ban("172.20.0.0/16", time.Hour), // inside alliance territory
		ban("10.1.2.0/30", time.Hour),   // contains an allowlisted host
	}
	if err := e.Apply(ds); err != nil {
		t.Fatal(err)
	}
	got := v4(kernelSets(t, ns))
	want := []string{"192.0.2.7", "10.1.2.0/31", "10.1.2.2"} // the /30 minus .3
	if len(got) != len(want) {
		t.Errorf("set = %v, want %v", got, want)
	}
	for _, w := range want {
		if _, ok := got[w]; !ok {
			t.Errorf("set lacks %s: %v", w, got)
		}
	}
	for v := range got {
		if strings.HasPrefix(v, "172.") || v == "10.1.2.3" || v == "192.0.2.99" || v == "198.18.0.0/16" {
			t.Errorf("set holds %s", v)
		}
	}
}

func TestDownRemovesOnlyPhalanxTable(t *testing.T) {
	netnstest.Need(t, "nftables tests", "ip", "nft")
	ns := netnstest.New(t, "phx-test-")
	netnstest.Run(t, "ip", "netns", "exec", ns, "nft", "add", "table", "inet", "other")
	netnstest.Run(t, "ip", "netns", "exec", ns, "nft", "add", "table", "ip", "phalanx") // same name, other family
	e := newEnforcer(t, ns)
	if err := e.Apply([]phalanx.Decision{ban("192.0.2.7/32", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := Down(Config{NetNS: ns}); err != nil {
		t.Fatal(err)
	}
	out := netnstest.Run(t, "ip", "netns", "exec", ns, "nft", "list", "tables")
	if strings.Contains(out, "inet phalanx") || !strings.Contains(out, "inet other") || !strings.Contains(out, "ip phalanx") {
		t.Errorf("after Down:\n%s", out)
	}
	if err := Down(Config{NetNS: ns}); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

func TestRealTrafficDroppedAndRestored(t *testing.T) {
	netnstest.Need(t, "nftables tests", "ip", "nft")
	server, client := netnstest.New(t, "phx-test-"), netnstest.New(t, "phx-test-")
	veth := "phx" + server[len(server)-6:]
	netnstest.Run(t, "ip", "link", "add", veth+"a", "netns", server, "type", "veth", "peer", "name", veth+"b", "netns", client)
	netnstest.Run(t, "ip", "-n", server, "addr", "add", "10.99.0.1/24", "dev", veth+"a")
	netnstest.Run(t, "ip", "-n", client, "addr", "add", "10.99.0.2/24", "dev", veth+"b")
	netnstest.Run(t, "ip", "-n", server, "link", "set", veth+"a", "up")
	netnstest.Run(t, "ip", "-n", client, "link", "set", veth+"b", "up")

	var ln net.Listener
	netnstest.Enter(t, server, func() {
		var err error
		ln, err = net.Listen("tcp", "10.99.0.1:0")
		if err != nil {
			t.Error(err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := func() error {
		var err error
		netnstest.Enter(t, client, func() {
			var c net.Conn
			c, err = net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond)
			if err == nil {
				c.Close()
			}
		})
		return err
	}
	// The veth link may take a moment to come up: an OS event, so poll.
	deadline := time.Now().Add(5 * time.Second)
	for err := dial(); err != nil; err = dial() {
		if time.Now().After(deadline) {
			t.Fatalf("no connection before any ban: %v", err)
		}
	}

	e := newEnforcer(t, server)
	set := decisions.New(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, set) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	set.Add(ban("10.99.0.2/32", time.Hour))
	deadline = time.Now().Add(5 * time.Second)
	for dial() == nil {
		if time.Now().After(deadline) {
			t.Fatal("client still connects after its ban")
		}
	}
	set.Delete(netip.MustParsePrefix("10.99.0.2/32"))
	deadline = time.Now().Add(5 * time.Second)
	for err := dial(); err != nil; err = dial() {
		if time.Now().After(deadline) {
			t.Fatalf("client still blocked after the lift: %v", err)
		}
	}
}

func TestKernelExpiresBanByItself(t *testing.T) {
	netnstest.Need(t, "nftables tests", "ip", "nft")
	ns := netnstest.New(t, "phx-test-")
	e := newEnforcer(t, ns)
	if err := e.Apply([]phalanx.Decision{ban("192.0.2.7/32", 2*time.Second), ban("2001:db8::/64", 2*time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := kernelSets(t, ns); len(got[setAddrV4]) != 1 || len(got[setRangeV6]) != 1 {
		t.Fatalf("not installed: %v", got)
	}
	// Phalanx does nothing more, as if it had died: the kernel alone
	// must drop the elements. Poll with a deadline: it is an OS event.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := kernelSets(t, ns)
		if len(got[setAddrV4]) == 0 && len(got[setRangeV6]) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still in the kernel after 10 s: %v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func BenchmarkApply100k(b *testing.B) {
	netnstest.Need(b, "nftables tests", "ip", "nft")
	ds := make([]phalanx.Decision, 0, 100_000)
	now := time.Now()
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})
		ds = append(ds, phalanx.Decision{Value: netip.PrefixFrom(a, 32), Type: phalanx.Ban, Duration: time.Hour, LastSeen: now})
	}
	for b.Loop() {
		b.StopTimer()
		ns := netnstest.New(b, "phx-test-")
		e := newEnforcer(b, ns)
		if err := e.Apply(nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := e.Apply(ds); err != nil {
			b.Fatal(err)
		}
	}
}
