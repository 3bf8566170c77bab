package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// safe makes attacker-controlled text fit for a terminal: control
// characters (escape sequences among them), invisible format characters
// (bidi overrides) and invalid UTF-8 are shown quoted instead of being
// interpreted.
func safe(s string) string {
	clean := utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
	}) < 0
	if clean {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
