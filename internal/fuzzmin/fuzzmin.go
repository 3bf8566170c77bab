// Package fuzzmin caps how long Go's fuzzing engine minimizes each new
// interesting input, for the packages whose inputs are costly to run.
//
// Minimizing a []byte tries removing every byte, then every run of bytes:
// on the order of n² executions for an n-byte input, and Go allows each
// new input 60 s of it by default. Where one execution is slow (a fail2ban
// filter compiles all its expressions, a fold snapshot checks a
// signature) and the inputs are hundreds to thousands of bytes, the
// workers spend whole runs minimizing, reported as 0 executions a second.
package fuzzmin

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// Main is a TestMain: it sets -test.fuzzminimizetime to limit unless the
// command line gives it, then runs the tests.
func Main(m *testing.M, limit string) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.fuzzminimizetime" })
	if !given {
		if err := flag.Set("test.fuzzminimizetime", limit); err != nil {
			fmt.Fprintln(os.Stderr, "cap fuzz minimization:", err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}
