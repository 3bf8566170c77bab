package fail2ban

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// fuzzMinimizeTime caps how long the fuzzing engine minimizes each new
// interesting input when -fuzzminimizetime is not given (Go's default is
// 60 s). Minimizing a []byte tries removing every byte, then every run of
// bytes: on the order of n² executions for an n-byte input. A filter is
// hundreds of bytes and each execution compiles all its expressions
// (about 0.5 ms), so minimizing one child of the seed filter takes minutes:
// with the default, both workers spent whole 60 s runs minimizing and
// FuzzLoadFilterBytes stood at 0 executions a second after its first 3 s.
// Two seconds still cuts the tail and removes single bytes of a
// filter-sized input.
const fuzzMinimizeTime = "2s"

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.fuzzminimizetime" })
	if !given {
		if err := flag.Set("test.fuzzminimizetime", fuzzMinimizeTime); err != nil {
			fmt.Fprintln(os.Stderr, "parse/fail2ban: cap fuzz minimization:", err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}
