package fail2ban

import (
	"testing"

	"github.com/phalanx-defence/phalanx/internal/fuzzmin"
)

// TestMain caps fuzz minimization at 2 s (internal/fuzzmin). A filter is
// hundreds of bytes and each execution compiles all its expressions
// (about 0.5 ms), so minimizing one child of the seed filter takes
// minutes: with Go's 60 s, both workers spent whole runs minimizing and
// FuzzLoadFilterBytes stood at 0 executions a second after its first 3 s.
// Two seconds still cuts the tail and removes single bytes of a
// filter-sized input.
func TestMain(m *testing.M) { fuzzmin.Main(m, "2s") }
