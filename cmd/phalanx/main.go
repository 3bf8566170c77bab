// Command phalanx reads logs, recognises attacks and decides what to block.
// The commands are wired here; the work is done in the packages.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "phalanx:", err)
		os.Exit(1)
	}
}
