package phalanx_test

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
)

// FuzzParsePrefixOrAddr: every address or range an operator, the API or a
// CrowdSec import hands over goes through ParsePrefixOrAddr. What it
// accepts is canonical (masked, IPv4-mapped unmapped) and agrees with
// net/netip; what it refuses, net/netip refuses too.
func FuzzParsePrefixOrAddr(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "203.0.113.9/24", "::ffff:1.2.3.4", "::ffff:1.2.3.0/120",
		"2001:db8::1", "2001:db8::/32", "fe80::1%eth0", "0.0.0.0/0", "::/0", "1.2.3.4/33", "01.2.3.4", "", " 1.2.3.4", "1.2.3.4/-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := phalanx.ParsePrefixOrAddr(s)
		_, aerr := netip.ParseAddr(s)
		_, perr := netip.ParsePrefix(s)
		if err != nil {
			if aerr == nil || perr == nil {
				t.Fatalf("%q refused, but net/netip reads it", s)
			}
			return
		}
		if aerr != nil && perr != nil {
			t.Fatalf("%q accepted as %s, but net/netip refuses it", s, p)
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("%q → %s: not canonical", s, p)
		}
		// The canonical form reads back to itself.
		d := phalanx.Decision{Value: p}
		back, err := phalanx.ParsePrefixOrAddr(d.ValueString())
		if err != nil || back != p {
			t.Fatalf("%q → %s → %q → %s, %v", s, p, d.ValueString(), back, err)
		}
	})
}

// FuzzDecisionJSON: decisions travel as JSON from the API to the CLI and
// the dashboard, and `phalanx replay -o json` output is read back by
// scripts. UnmarshalJSON must refuse or read anything without panicking,
// and whatever it reads must survive a round trip unchanged.
func FuzzDecisionJSON(f *testing.F) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, d := range []phalanx.Decision{
		{Value: netip.MustParsePrefix("203.0.113.9/32"), Type: phalanx.Ban, Scenario: "ssh-bf", Duration: 4 * time.Hour,
			FirstSeen: t0, LastSeen: t0.Add(time.Minute), Events: 6, Origin: phalanx.OriginLocal, Evidence: []string{"Failed password for root from 203.0.113.9 \x1b[2J"}},
		{Value: netip.MustParsePrefix("2001:db8::/48"), Type: phalanx.Captcha, Scenario: "manual", Duration: time.Minute, Origin: phalanx.OriginManual},
	} {
		b, err := json.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"value":"1.2.3.4","duration":"-5h"}`))
	f.Add([]byte(`{"value":"::ffff:1.2.3.4/128","duration":"1h","type":"nonsense"}`))
	f.Add([]byte(`{"value":"1.2.3.4","duration":"2562048h"}`))
	f.Add([]byte(`{"value":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d phalanx.Decision
		if err := json.Unmarshal(b, &d); err != nil {
			return
		}
		if !d.Value.IsValid() {
			t.Fatalf("%q read as a decision on no address", b)
		}
		out, err := json.Marshal(d)
		if err != nil {
			return // an unknown type or a time json cannot write: refused on the way out
		}
		var again phalanx.Decision
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("%q → %s does not read back: %v", b, out, err)
		}
		out2, err := json.Marshal(again)
		if err != nil || string(out) != string(out2) {
			t.Fatalf("round trip changed the decision:\n%s\n%s (%v)", out, out2, err)
		}
	})
}
