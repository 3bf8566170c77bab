package main

import "testing"

// Attacker-controlled text shown on a terminal must not carry escape
// sequences or control characters through.
func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"root":                 "root",
		"héllo":                "héllo",
		"\x1b[2J\x1b[31mowned": `\x1b[2J\x1b[31mowned`,
		"a\nb\rc\x00":          `a\nb\rc\x00`,
		"\xff\xfe":             `\xff\xfe`,
		"\u202eevil":           `\u202eevil`, // bidi override: could disguise what follows
	} {
		if got := safe(in); got != want {
			t.Errorf("safe(%q) = %q, want %q", in, got, want)
		}
	}
}
