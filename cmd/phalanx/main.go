// Command phalanx reads logs, recognises attacks and decides what to block.
// The commands are wired here; the work is done in the packages.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultMemoryLimit is the soft heap limit when GOMEMLIMIT is not set.
// Detection state is capped by count (detect.DefaultMaxSources); this
// makes the garbage collector keep the process near that live size
// instead of letting the heap double before collecting, so that a flood
// of distinct sources costs CPU, not the host's memory.
const defaultMemoryLimit = 80 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "phalanx:", err)
		os.Exit(1)
	}
}
