package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/engine/demo"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var (
		profiles int
		seed     int64
		noTUI    bool
		asJSON   bool
		outFile  string
	)
	cmd := &cobra.Command{
		Use:   "demo [--profiles N] [--seed S] [--data DIR] [--no-tui] [--out FILE]",
		Short: "Generate a realistic demo dataset, ingest it and open the workbench",
		Long: `Generate a deterministic Segment-spec dataset (anonymous browsing that signs up,
people on several devices, shared family devices, junk identifiers, orders,
consent decisions) and ingest it. Without --data it uses a new temporary dir and
names it. The events end today (UTC midnight), so the same --seed and
--profiles give the same data on the same day.

With --out FILE it writes the dataset there as NDJSON instead (gzip when FILE
ends in .gz, stdout for -) and ingests nothing: input for loupe ingest, the
collector or another tool.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if profiles < 1 {
				return withCode(ExitUsage, fmt.Errorf("--profiles must be at least 1"))
			}
			now := time.Now().UTC().Truncate(24 * time.Hour)
			opts := demo.Options{Profiles: profiles, Seed: seed, Now: now}
			if outFile != "" {
				return writeDemo(cmd, outFile, opts, asJSON)
			}
			if g.data == "" {
				dir, err := os.MkdirTemp("", "loupe-demo-")
				if err != nil {
					return err
				}
				g.data = dir
			}
			eng, err := g.openEngine()
			if err != nil {
				return err
			}
			defer eng.Close()
			sum, st, err := generateAndIngest(cmd.Context(), eng, opts, !asJSON)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, map[string]any{"data": eng.Dir(), "generated": sum, "ingest": toIngestJSON(st)})
			}
			fmt.Fprintf(out, "Generated a demo dataset in %s\n\n%s\n", eng.Dir(), sum)
			printIngest(out, st, eng.Dir())
			if !noTUI && demoOpensTUI != nil {
				return demoOpensTUI(cmd, g, eng)
			}
			fmt.Fprintf(out, `
Explore it:
  loupe --data %[1]s stats
  loupe --data %[1]s profile show user_id:%[2]s
  loupe --data %[1]s profile events user_id:%[2]s --limit 10
  loupe --data %[1]s why <TYPE:VALUE> <TYPE:VALUE>
`, eng.Dir(), sampleUserID(cmd.Context(), eng))
			return nil
		},
	}
	cmd.Flags().IntVar(&profiles, "profiles", 20000, "how many people to generate (up to millions)")
	cmd.Flags().Int64Var(&seed, "seed", 1, "random seed; the same seed gives the same data")
	cmd.Flags().BoolVar(&noTUI, "no-tui", false, "print the summary instead of opening the workbench")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON (implies --no-tui)")
	cmd.Flags().StringVar(&outFile, "out", "", "write the dataset to `FILE` as NDJSON (.gz: gzip; -: stdout) instead of ingesting it")
	return cmd
}

// writeDemo writes the generated dataset to path (see the demo command)
// and prints its summary, on stderr when the data goes to stdout.
func writeDemo(cmd *cobra.Command, path string, opts demo.Options, asJSON bool) (err error) {
	out, report := cmd.OutOrStdout(), cmd.OutOrStdout()
	if path == "-" {
		report = cmd.ErrOrStderr()
	} else {
		var f *os.File
		if f, err = os.Create(path); err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = cerr
			}
		}()
		out = f
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	var w io.Writer = bw
	var zw *gzip.Writer
	if strings.HasSuffix(path, ".gz") {
		zw = gzip.NewWriter(bw)
		w = zw
	}
	sum, err := demo.Generate(cmd.Context(), w, opts)
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("write demo data to %s: %w", path, err)
	}
	if asJSON {
		return printJSON(report, map[string]any{"file": path, "generated": sum})
	}
	fmt.Fprintf(report, "Wrote a demo dataset to %s\n\n%s\n", path, sum)
	return nil
}

// demoOpensTUI is set by the workbench's command file.
var demoOpensTUI func(*cobra.Command, *globalFlags, *engine.Engine) error

// generateAndIngest streams the generator straight into the ingest
// pipeline, so generation and ingest overlap.
func generateAndIngest(ctx context.Context, eng *engine.Engine, opts demo.Options, progress bool) (demo.Summary, engine.IngestStats, error) {
	pr, pw := io.Pipe()
	sumCh := make(chan demo.Summary, 1)
	errCh := make(chan error, 1)
	go func() {
		s, err := demo.Generate(ctx, pw, opts)
		pw.CloseWithError(err)
		sumCh <- s
		errCh <- err
	}()
	iopts := engine.IngestOptions{SizeHint: demo.ApproxBytes(opts)}
	var bar *progressBar
	if progress && isTerminal(os.Stderr) {
		bar = &progressBar{w: os.Stderr, start: time.Now()}
		iopts.Progress = bar.update
	}
	st, err := eng.IngestReader(ctx, pr, "demo", iopts)
	if bar != nil {
		bar.finish()
	}
	pr.CloseWithError(io.ErrClosedPipe)
	sum, genErr := <-sumCh, <-errCh
	if err != nil {
		return sum, st, err
	}
	if genErr != nil {
		return sum, st, fmt.Errorf("generate demo data: %w", genErr)
	}
	return sum, st, nil
}

// sampleUserID is a user id of one of the most recently active profiles,
// for the examples the summary prints. It reads a few profiles, not the
// rules snapshot that a search would build (tens of seconds at 1M).
func sampleUserID(ctx context.Context, eng *engine.Engine) string {
	ids, _, err := eng.RecentProfiles(ctx, 50)
	if err != nil {
		return "u1"
	}
	for _, id := range ids {
		p, err := eng.Profile(ctx, id)
		if err != nil {
			continue
		}
		for _, x := range p.Identities {
			if x.Type == "user_id" {
				return x.Value
			}
		}
	}
	return "u1"
}
