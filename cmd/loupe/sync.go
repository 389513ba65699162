package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/engine/collector"
	lsync "github.com/loupe-cdp/loupe/engine/sync"
)

func init() {
	extraCommands = append(extraCommands, newSyncCmd, newSourcesCmd, newServeCmd)
}

func newSyncCmd(g *globalFlags) *cobra.Command {
	var asJSON, watch bool
	cmd := &cobra.Command{
		Use:   "sync [NAME...] [--json] [--watch]",
		Short: "Pull events from the sources declared in sources.yaml",
		Long: `Sync reads the sources declared in sources.yaml in the data dir (PostgreSQL
tables or queries, HTTP APIs, NDJSON/JSON/gzip files), all of them or the
NAMEs given, incrementally from each source's checkpoint. Events and the
checkpoint commit together, so an interrupted sync resumes without losing or
doubling an event. Progress goes to stderr.

--json prints one line per source:
  {"source":"...","fetched":N,"ingested":N,"duplicates":N,"quarantined":N,"cursor":"...","elapsed_ms":N,"error":null}
--watch keeps running each source on its interval until interrupted.
Exit status 1 if any source failed.`,
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			r := &lsync.Runner{Store: eng, Progress: syncProgress(os.Stderr)}
			failed := false
			emit := func(res lsync.Result) {
				if res.Error != nil {
					failed = true
				}
				if asJSON {
					b, _ := json.Marshal(res)
					fmt.Fprintf(out, "%s\n", b)
					return
				}
				status := "ok"
				if res.Error != nil {
					status = "error: " + *res.Error
				}
				fmt.Fprintf(out, "%s: fetched %d, ingested %d, duplicates %d, quarantined %d, cursor %q, %dms, %s\n",
					res.Source, res.Fetched, res.Ingested, res.Duplicates, res.Quarantined, res.Cursor, res.ElapsedMS, status)
			}
			if watch {
				err := r.Watch(ctx, args, emit)
				if errors.Is(err, lsync.ErrNoSource) {
					return withCode(ExitNotFound, err)
				}
				return err
			}
			srcs, err := lsync.LoadSources(eng.Dir())
			if err != nil {
				return withCode(ExitUsage, err)
			}
			if len(srcs) == 0 {
				return fmt.Errorf("no sources: declare them in %s/%s (see README)", eng.Dir(), lsync.SourcesFile)
			}
			sel, err := lsync.Select(srcs, args)
			if err != nil {
				return withCode(ExitNotFound, err)
			}
			for _, s := range sel {
				if ctx.Err() != nil {
					break
				}
				emit(r.RunSource(ctx, s))
			}
			if ctx.Err() != nil {
				return withCode(ExitFailure, errors.New("interrupted; the next sync resumes from the last checkpoint"))
			}
			if failed {
				return withCode(ExitFailure, nil)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON line per source")
	cmd.Flags().BoolVar(&watch, "watch", false, "keep syncing on each source's interval until interrupted")
	return cmd
}

// syncProgress writes a one-line status per page to w (a terminal gets it
// rewritten in place).
func syncProgress(w *os.File) func(lsync.Progress) {
	tty := isTerminal(w)
	last := time.Time{}
	return func(p lsync.Progress) {
		r := p.Result
		if !p.Done && time.Since(last) < 200*time.Millisecond {
			return
		}
		last = time.Now()
		line := fmt.Sprintf("%s (%s): %d pages, fetched %d, ingested %d, duplicates %d, quarantined %d",
			r.Source, p.Kind, p.Pages, r.Fetched, r.Ingested, r.Duplicates, r.Quarantined)
		switch {
		case tty && !p.Done:
			fmt.Fprintf(w, "\r\033[K%s", line)
		case tty:
			fmt.Fprintf(w, "\r\033[K")
		case p.Done:
			// the result line on stdout says it all
		default:
			fmt.Fprintln(w, line)
		}
	}
}

func newSourcesCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sources",
		Short: "List and test the sync sources of sources.yaml",
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List sources with kind, interval, last run, rows, lag and last error",
		Args:  cobra.NoArgs,
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			ss, err := lsync.Status(cmd.Context(), eng, eng.Dir(), nil)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if ss == nil {
					ss = []lsync.SourceStatus{}
				}
				return printJSON(out, ss)
			}
			printSources(out, ss)
			return nil
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var n int
	test := &cobra.Command{
		Use:   "test NAME [-n 5]",
		Short: "Connect to a source and show its first mapped records without writing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.dataDir()
			if err != nil {
				return err
			}
			srcs, err := lsync.LoadSources(dir)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			sel, err := lsync.Select(srcs, args)
			if err != nil {
				return withCode(ExitNotFound, err)
			}
			// no engine: testing a source must not need (or lock) the store
			r := &lsync.Runner{Store: dirOnly(dir)}
			rows, err := r.Test(cmd.Context(), sel[0], n)
			out := cmd.OutOrStdout()
			for _, row := range rows {
				if row.Error != "" {
					fmt.Fprintf(out, "✗ %s: would be quarantined: %s\n", row.Key, row.Error)
					continue
				}
				fmt.Fprintf(out, "✓ %s\n", row.Message)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d records shown, nothing written\n", sel[0].Name, len(rows))
			return nil
		},
	}
	test.Flags().IntVarP(&n, "n", "n", 5, "how many records to show")
	cmd.AddCommand(list, test)
	return cmd
}

// dirOnly is a Store for `sources test`, which reads nothing and writes
// nothing: it only resolves relative file paths.
type dirOnly string

func (d dirOnly) Dir() string { return string(d) }
func (d dirOnly) IngestBatch(ctx context.Context, msgs []engine.Message, cp *engine.Checkpoint) (engine.IngestStats, error) {
	return engine.IngestStats{}, errors.New("sources test writes nothing")
}
func (d dirOnly) Checkpoint(ctx context.Context, source string) ([]byte, error) { return nil, nil }
func (d dirOnly) Quarantine(ctx context.Context, source, key, reason string, data []byte) error {
	return errors.New("sources test writes nothing")
}

func printSources(w io.Writer, ss []lsync.SourceStatus) {
	if len(ss) == 0 {
		fmt.Fprintf(w, "no sources declared (%s in the data dir)\n", lsync.SourcesFile)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tINTERVAL\tLAST RUN\tROWS\tLAG\tCURSOR\tLAST ERROR")
	for _, s := range ss {
		last, lag := "never", "-"
		if !s.LastRun.IsZero() {
			last = s.LastRun.Local().Format("2006-01-02 15:04:05")
		}
		if s.LagKnown {
			lag = s.Lag.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Name, s.Kind, s.Interval, last, s.Rows, lag, s.Cursor, s.LastError)
	}
	tw.Flush()
}

func newServeCmd(g *globalFlags) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:8088]",
		Short: "Accept Segment Tracking API traffic from Segment SDKs",
		Long: `Serve speaks Segment's HTTP Tracking API (POST /v1/batch, /v1/identify,
/v1/track, /v1/page, /v1/screen, /v1/group, /v1/alias) so that Segment's SDKs
can send events straight to this data dir: point the SDK's endpoint/host at
http://ADDR. Requests need HTTP basic auth with a write key from
collector.yaml in the data dir as the user name:

  write_keys:
    - ${LOUPE_WRITE_KEY}

A 200 {"success":true} means the events are on disk. GET /health reports
status. Listens on loopback unless --addr says otherwise; SIGINT or SIGTERM
shut down gracefully, writing every request already accepted.`,
		Args: cobra.NoArgs,
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			keys, err := collector.LoadWriteKeys(eng.Dir())
			if err != nil {
				return withCode(ExitUsage, err)
			}
			s := collector.New(eng, collector.Options{WriteKeys: keys})
			err = s.Serve(cmd.Context(), addr, func(a net.Addr) {
				fmt.Fprintf(cmd.ErrOrStderr(), "loupe: collecting on http://%s (%d write keys); Ctrl-C stops\n", a, len(keys))
			})
			st := s.Stats()
			fmt.Fprintf(cmd.ErrOrStderr(), "loupe: stopped: %d requests, %d messages, %d ingested in %d writes\n",
				st.Requests, st.Messages, st.Ingested, st.Batches)
			return err
		}),
	}
	cmd.Flags().StringVar(&addr, "addr", collector.DefaultAddr, "listen address (loopback by default)")
	return cmd
}
