// Command loupe is the analyst's workbench for customer data: it ingests
// Segment-spec events into unified profiles on a local Badger store and
// lets you browse, segment, explain and govern them.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultMemoryLimit is the soft limit on the Go heap unless GOMEMLIMIT
// says otherwise: a million-profile ingest stays well under 4 GB of memory
// instead of letting garbage grow to twice the live heap.
const defaultMemoryLimit = 2560 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

// run executes the CLI and returns the process exit code.
func run(ctx context.Context, args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.err != nil {
			fmt.Fprintln(os.Stderr, "loupe:", ex.err)
		}
		return ex.code
	}
	fmt.Fprintln(os.Stderr, "loupe:", err)
	return exitCodeFor(err)
}
