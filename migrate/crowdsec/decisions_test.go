package crowdsec

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/migrate"
)

var now = time.Date(2026, 11, 27, 18, 0, 5, 0, time.UTC)

func decodeFile(t *testing.T, name string) *Decisions {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := DecodeDecisions(f, now)
	if err != nil {
		t.Fatalf("DecodeDecisions(%s): %v", name, err)
	}
	return got
}

func byValue(ds []phalanx.Decision) map[string]phalanx.Decision {
	m := map[string]phalanx.Decision{}
	for _, d := range ds {
		m[d.ValueString()] = d
	}
	return m
}

func TestDecodeCscliAlerts(t *testing.T) {
	got := decodeFile(t, "cscli-alerts.json")
	if got.Format != FormatAlerts {
		t.Errorf("format %q, want %q", got.Format, FormatAlerts)
	}
	if got.Read != 10 {
		t.Errorf("read %d decisions, want 10", got.Read)
	}
	m := byValue(got.Imported)
	if len(m) != 3 {
		t.Fatalf("imported %v, want 192.0.2.10, 198.51.100.0/24, 2001:db8::7", m)
	}
	d := m["192.0.2.10"]
	// Two decisions for one address: the later end wins (5h from now).
	if d.Type != phalanx.Ban || !d.Until().Equal(now.Add(5*time.Hour)) || d.Scenario != "crowdsecurity/ssh-slow-bf" {
		t.Errorf("192.0.2.10 = %+v, want the 5h ssh-slow-bf ban", d)
	}
	if d.Origin != migrate.OriginCrowdSec {
		t.Errorf("origin %q, want %q", d.Origin, migrate.OriginCrowdSec)
	}
	if got.Merged != 1 {
		t.Errorf("merged %d, want 1", got.Merged)
	}
	if r := m["198.51.100.0/24"]; r.Scope() != phalanx.ScopeRange || r.Duration != 23*time.Hour {
		t.Errorf("range = %+v", r)
	}
	if c := m["2001:db8::7"]; c.Type != phalanx.Captcha || c.Duration != time.Hour {
		t.Errorf("captcha = %+v", c)
	}
	want := map[string]int{
		migrate.ReasonExpired:                              1,
		migrate.ReasonUnsupportedScope + " Country":        1,
		migrate.ReasonUnsupportedScope + " AS":             1,
		migrate.ReasonInvalidValue + ": not an IP address": 1,
		migrate.ReasonSimulated:                            1,
		migrate.ReasonUnsupportedType + " tarpit":          1,
	}
	for r, n := range want {
		if got.Skipped.ByReason[r] != n {
			t.Errorf("skipped for %q: %d, want %d (all: %v)", r, got.Skipped.ByReason[r], n, got.Skipped.ByReason)
		}
	}
	if got.Skipped.Total != 6 {
		t.Errorf("skipped %d, want 6", got.Skipped.Total)
	}
	// Every skip says where it was.
	for _, s := range got.Skipped.Examples {
		if !strings.HasPrefix(s.Where, "line ") {
			t.Errorf("skip %+v does not name its line", s)
		}
	}
}

func TestDecodeStream(t *testing.T) {
	got := decodeFile(t, "stream.json")
	if got.Format != FormatStream {
		t.Errorf("format %q, want %q", got.Format, FormatStream)
	}
	m := byValue(got.Imported)
	if len(m) != 2 || m["203.0.113.128/25"].Duration != 167*time.Hour+59*time.Minute {
		t.Errorf("imported %v", m)
	}
	if got.Skipped.ByReason[migrate.ReasonDeleted] != 1 {
		t.Errorf("skipped %v, want one deleted", got.Skipped.ByReason)
	}
}

func TestDecodeShapes(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		format   string
		n        int
		err      string
	}{
		{"null", "null\n", FormatEmpty, 0, ""},
		{"empty array", "[]", FormatEmpty, 0, ""},
		{"plain decisions", `[{"value":"192.0.2.1","scope":"Ip","type":"ban","duration":"1h"}]`, FormatDecisions, 1, ""},
		{"until wins over duration", `[{"value":"192.0.2.1","type":"ban","duration":"-1h","until":"2026-11-28T18:00:05Z"}]`, FormatDecisions, 1, ""},
		{"ipv4-mapped", `[{"value":"::ffff:192.0.2.1","scope":"ip","type":"ban","duration":"1h"}]`, FormatDecisions, 1, ""},
		{"empty stream", `{"new":null,"deleted":null}`, FormatStream, 0, ""},
		{"empty file", "  \n", "", 0, "empty"},
		{"not json", "value,scope\n", "", 0, "want a JSON array"},
		{"object of another kind", `{"alerts":[]}`, "", 0, `without "new"`},
		{"syntax error names the line", "[\n{\"value\": \"192.0.2.1\",\n\"type\" \"ban\"}]", "", 0, "line 3"},
		{"truncated", `[{"value":"192.0.2.1"`, "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeDecisions(strings.NewReader(tc.in), now)
			if tc.format == "" {
				if err == nil {
					t.Fatalf("no error, want one")
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %q, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Format != tc.format || len(got.Imported) != tc.n {
				t.Errorf("format %q with %d decisions, want %q with %d (skipped %v)", got.Format, len(got.Imported), tc.format, tc.n, got.Skipped.ByReason)
			}
		})
	}
}

func TestDecodeWrongFieldTypeIsSkippedNotFatal(t *testing.T) {
	in := `[{"value":"192.0.2.1","type":"ban","duration":"1h"},{"value":42,"type":"ban","duration":"1h"}]`
	got, err := DecodeDecisions(strings.NewReader(in), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Imported) != 1 || got.Skipped.Total != 1 {
		t.Fatalf("imported %d, skipped %v", len(got.Imported), got.Skipped)
	}
	if s := got.Skipped.Examples[0]; !strings.Contains(s.Reason, "value") || !strings.Contains(s.Where, "decision 2") {
		t.Errorf("skip %+v should name the field and the item", s)
	}
}

// FuzzDecodeDecisions feeds arbitrary bytes: the decoder must not panic,
// and whatever it imports must be a valid decision in force.
func FuzzDecodeDecisions(f *testing.F) {
	for _, name := range []string{"cscli-alerts.json", "stream.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`null`))
	f.Add([]byte(`[{"value":"2001:db8::/32","scope":"Range","type":"captcha","until":"2030-01-01T00:00:00Z"}]`))
	f.Add([]byte(`{"new":[{"value":"1.2.3.4","type":"ban","duration":"1h"}],"deleted":[{"value":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeDecisions(bytes.NewReader(b), now)
		if err != nil {
			return
		}
		seen := map[netip.Prefix]bool{}
		for _, d := range got.Imported {
			if !d.Value.IsValid() || d.Value != d.Value.Masked() {
				t.Fatalf("invalid value %v", d.Value)
			}
			if seen[d.Value] {
				t.Fatalf("%v imported twice", d.Value)
			}
			seen[d.Value] = true
			if !d.Until().After(now) {
				t.Fatalf("%v imported already expired", d.Value)
			}
			if _, err := phalanx.ParseDecisionType(string(d.Type)); err != nil {
				t.Fatal(err)
			}
		}
		if got.Read < len(got.Imported)+got.Skipped.Total-countNonDecision(got) {
			t.Fatalf("read %d < imported %d + skipped %d", got.Read, len(got.Imported), got.Skipped.Total)
		}
	})
}

// countNonDecision counts skips of items that were not decisions at all
// (not counted as read).
func countNonDecision(d *Decisions) int {
	n := 0
	for r, c := range d.Skipped.ByReason {
		if strings.HasPrefix(r, "not an object") || strings.HasPrefix(r, "unreadable alert") {
			n += c
		}
	}
	return n
}

// BenchmarkDecodeDecisions decodes a bouncer stream of 15,000 decisions,
// the size of a small community blocklist.
func BenchmarkDecodeDecisions(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"new":[`)
	for i := range 15000 {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"id":%d,"origin":"CAPI","scenario":"crowdsecurity/ssh-bf","scope":"Ip","type":"ban","value":"100.%d.%d.%d","duration":"%dh0m0s"}`,
			i, 64+i/65536, (i/256)%256, i%256, 1+i%160)
	}
	buf.WriteString(`],"deleted":[]}`)
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := DecodeDecisions(bytes.NewReader(data), now)
		if err != nil || len(got.Imported) != 15000 {
			b.Fatalf("%v, %d decisions", err, len(got.Imported))
		}
	}
}
