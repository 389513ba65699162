package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/loupe-cdp/loupe/engine"
)

// ingestJSON is the stable --json shape of `loupe ingest`.
type ingestJSON struct {
	Read            int64 `json:"read"`
	Ingested        int64 `json:"ingested"`
	Duplicates      int64 `json:"duplicates"`
	Rejected        int64 `json:"rejected"`
	Suppressed      int64 `json:"suppressed"`
	ProfilesCreated int64 `json:"profiles_created"`
	Merges          int64 `json:"merges"`
	RefusedMerges   int64 `json:"refused_merges"`
	ElapsedMS       int64 `json:"elapsed_ms"`
}

func newIngestCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ingest [--json] FILE...|-",
		Short: "Ingest Segment-spec events (NDJSON, JSON array or batch; gzip too)",
		Long: `Ingest Segment Tracking API messages (identify, track, page, screen, group,
alias) from files or standard input (-). NDJSON, a JSON array and a batch
envelope {"batch":[...]} are accepted, gzip-compressed or not.

Messages seen before (same messageId) are skipped as duplicates. Bad lines are
rejected with file:line and the reason, appended to rejects.ndjson in the data
dir, and the rest goes on. Exit status 3 means some lines were rejected.`,
		Args: cobra.MinimumNArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			const maxShown = 20
			shown := 0
			opts := engine.IngestOptions{OnReject: func(source string, line int, reason string) {
				// The full list is in the rejects file; the terminal gets the first few.
				if shown < maxShown {
					fmt.Fprintf(os.Stderr, "\r\033[K%s:%d: %s\n", source, line, reason)
				} else if shown == maxShown {
					fmt.Fprintf(os.Stderr, "\r\033[K(more rejected lines: see %s in the data dir)\n", engine.RejectsFile)
				}
				shown++
			}}
			var bar *progressBar
			if isTerminal(os.Stderr) {
				bar = &progressBar{w: os.Stderr, start: time.Now()}
				opts.Progress = bar.update
			}
			st, err := eng.IngestFiles(cmd.Context(), args, opts)
			if bar != nil {
				bar.finish()
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, toIngestJSON(st)); err != nil {
					return err
				}
			} else {
				printIngest(out, st, eng.Dir())
			}
			if st.Rejected > 0 {
				return withCode(ExitRejected, nil)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func toIngestJSON(st engine.IngestStats) ingestJSON {
	return ingestJSON{
		Read: st.Read, Ingested: st.Ingested, Duplicates: st.Duplicates, Rejected: st.Rejected,
		Suppressed: st.Suppressed, ProfilesCreated: st.ProfilesCreated, Merges: st.Merges,
		RefusedMerges: st.RefusedMerges, ElapsedMS: st.Elapsed.Milliseconds(),
	}
}

func printIngest(w io.Writer, st engine.IngestStats, dir string) {
	rate := 0.0
	if s := st.Elapsed.Seconds(); s > 0 {
		rate = float64(st.Read) / s
	}
	fmt.Fprintf(w, "read             %s\n", commas(st.Read))
	fmt.Fprintf(w, "ingested         %s\n", commas(st.Ingested))
	fmt.Fprintf(w, "duplicates       %s\n", commas(st.Duplicates))
	fmt.Fprintf(w, "rejected         %s\n", commas(st.Rejected))
	if st.Suppressed > 0 {
		fmt.Fprintf(w, "suppressed       %s\n", commas(st.Suppressed))
	}
	fmt.Fprintf(w, "profiles created %s\n", commas(st.ProfilesCreated))
	fmt.Fprintf(w, "merges           %s\n", commas(st.Merges))
	fmt.Fprintf(w, "refused merges   %s\n", commas(st.RefusedMerges))
	fmt.Fprintf(w, "elapsed          %s (%s events/s)\n", st.Elapsed.Round(time.Millisecond), commas(int64(rate)))
	if st.Rejected > 0 {
		fmt.Fprintf(w, "rejected lines are in %s/%s\n", dir, engine.RejectsFile)
	}
}

func isTerminal(f *os.File) bool { return isatty.IsTerminal(f.Fd()) }

// commas formats 1234567 as 1,234,567.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// progressBar draws ingest progress on a terminal.
type progressBar struct {
	w     io.Writer
	start time.Time
	last  time.Time
	drawn bool
}

func (p *progressBar) update(pr engine.IngestProgress) {
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	rate := float64(pr.Stats.Read) / max(time.Since(p.start).Seconds(), 0.001)
	line := fmt.Sprintf("%s events  %s/s", commas(pr.Stats.Read), commas(int64(rate)))
	if pr.TotalBytes > 0 {
		frac := min(1, float64(pr.Bytes)/float64(pr.TotalBytes))
		const width = 30
		n := int(frac * width)
		line = fmt.Sprintf("[%s%s] %3.0f%%  %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, line)
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

func (p *progressBar) finish() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
