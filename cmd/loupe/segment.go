package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/rules"
)

func init() { extraCommands = append(extraCommands, newSegmentCmd, newRulesCmd) }

// ruleError turns engine errors about the user's input into exit code 2;
// a rule error gets the source line and a caret under the column.
func ruleError(err error) error {
	var rerr *rules.Error
	switch {
	case errors.As(err, &rerr):
		msg := "rule " + rerr.Error()
		if c := rerr.Caret(); c != "" {
			msg += "\n" + c
		}
		return withCode(ExitUsage, errors.New(msg))
	case errors.Is(err, engine.ErrSegmentName), errors.Is(err, engine.ErrExportFormat), errors.Is(err, engine.ErrSegmentPurpose):
		return withCode(ExitUsage, err)
	}
	return err
}

func newSegmentCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "segment",
		Short: "Preview rules and manage saved, versioned segments",
		Long: `Segments are rules over unified profiles (see "loupe rules help"), saved under
a name. Every save is a new version; history shows who changed what, when.`,
	}
	cmd.AddCommand(
		newSegmentPreviewCmd(g), newSegmentSaveCmd(g), newSegmentListCmd(g), newSegmentShowCmd(g),
		newSegmentDeleteCmd(g), newSegmentHistoryCmd(g), newSegmentMembersCmd(g), newSegmentOverlapCmd(g),
		newSegmentExportCmd(g),
	)
	return cmd
}

// previewJSON is the stable --json shape of `loupe segment preview`.
type previewJSON struct {
	Count             int                     `json:"count"`
	Total             int                     `json:"total"`
	Percent           float64                 `json:"percent"`
	Purpose           string                  `json:"purpose,omitempty"`
	Eligible          int                     `json:"eligible"`
	ExcludedNoConsent int                     `json:"excluded_no_consent"`
	Suppressed        int                     `json:"suppressed"`
	Sample            []engine.ProfileSummary `json:"sample"`
	Errors            []engine.RuleRowError   `json:"errors"`
	ErrorCount        int                     `json:"error_count"`
	Plan              string                  `json:"plan"`
	ElapsedMS         int64                   `json:"elapsed_ms"`
}

func newSegmentPreviewCmd(g *globalFlags) *cobra.Command {
	var purpose string
	var sample int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "preview 'RULE' [--purpose P] [--sample N] [--json]",
		Short: "Count and sample the profiles a rule matches",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if sample < 0 {
				return withCode(ExitUsage, fmt.Errorf("--sample %d: must be 0 or more", sample))
			}
			eng, err := g.openEngine()
			if err != nil {
				return err
			}
			defer eng.Close()
			n := sample
			if n == 0 {
				n = -1
			}
			res, err := eng.Preview(cmd.Context(), args[0], engine.PreviewOptions{Purpose: purpose, Sample: n})
			if err != nil {
				return ruleError(err)
			}
			out := previewJSON{
				Count: res.Count, Total: res.Total, Percent: res.Percent, Purpose: purpose, Eligible: res.Eligible,
				ExcludedNoConsent: res.ExcludedNoConsent, Suppressed: res.Suppressed, Sample: res.Sample,
				Errors: res.Errors, ErrorCount: res.ErrorCount, Plan: res.Plan, ElapsedMS: res.Elapsed.Milliseconds(),
			}
			if out.Errors == nil {
				out.Errors = []engine.RuleRowError{}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return printJSON(w, out)
			}
			fmt.Fprintf(w, "%d of %d profiles (%.1f%%) in %s\n", res.Count, res.Total, res.Percent, res.Elapsed.Round(time.Millisecond))
			if purpose != "" {
				fmt.Fprintf(w, "  eligible for %s: %d, excluded for lack of consent: %d\n", purpose, res.Eligible, res.ExcludedNoConsent)
			}
			if res.Suppressed > 0 {
				fmt.Fprintf(w, "  suppressed subjects left out: %d\n", res.Suppressed)
			}
			printRowErrors(w, res.Errors, res.ErrorCount)
			if len(res.Sample) > 0 {
				fmt.Fprintln(w)
				printSummaries(w, res.Sample)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&purpose, "purpose", "", "split the count by consent for this purpose")
	cmd.Flags().IntVar(&sample, "sample", 20, "matching profiles to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func printRowErrors(w io.Writer, errs []engine.RuleRowError, n int) {
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "  %d profiles failed to evaluate (they do not match); first:\n", n)
	for i, e := range errs {
		if i == 3 {
			break
		}
		fmt.Fprintf(w, "    %s: %s\n", e.ProfileID, e.Message)
	}
}

func printSummaries(w io.Writer, ss []engine.ProfileSummary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tUSER ID\tEVENTS\tLAST SEEN\tTRAITS")
	for _, s := range ss {
		var traits []string
		for k, v := range s.Traits {
			traits = append(traits, fmt.Sprintf("%s=%v", k, v))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, dash(s.Email), dash(s.UserID), s.EventCount,
			s.LastSeen.Format(time.DateTime), strings.Join(sortedStrings(traits), " "))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// segmentJSON is the stable --json shape of a segment version.
type segmentJSON struct {
	Name        string    `json:"name"`
	Version     int       `json:"version"`
	Rule        string    `json:"rule"`
	Description string    `json:"description"`
	Purpose     string    `json:"purpose"`
	Author      string    `json:"author"`
	Time        time.Time `json:"time"`
	Deleted     bool      `json:"deleted"`
}

func toSegmentJSON(s engine.Segment) segmentJSON { return segmentJSON(s) }

func newSegmentSaveCmd(g *globalFlags) *cobra.Command {
	var desc, purpose string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "save NAME 'RULE' [--description TEXT] [--purpose P]",
		Short: "Save a rule as a new version of segment NAME",
		Args:  cobra.ExactArgs(2),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			s, err := eng.SaveSegment(cmd.Context(), args[0], args[1], engine.SegmentOptions{Description: desc, Purpose: purpose})
			if err != nil {
				return ruleError(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), toSegmentJSON(s))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "saved %s version %d\n", s.Name, s.Version)
			return nil
		}),
	}
	cmd.Flags().StringVar(&desc, "description", "", "what the segment is")
	cmd.Flags().StringVar(&purpose, "purpose", "", "consent purpose the segment is used for (exports keep only profiles that allow it)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newSegmentListCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List saved segments (latest versions)",
		Args:  cobra.NoArgs,
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			segs, err := eng.Segments(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]segmentJSON, 0, len(segs))
				for _, s := range segs {
					out = append(out, toSegmentJSON(s))
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tPURPOSE\tUPDATED\tBY\tRULE")
			for _, s := range segs {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", s.Name, s.Version, dash(s.Purpose), s.Time.Format(time.DateTime), s.Author, oneLine(s.Rule))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func newSegmentShowCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME [--json]",
		Short: "Show a segment's latest version and how many profiles it matches now",
		Args:  cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			m, err := eng.SegmentMembers(cmd.Context(), args[0], 0)
			if err != nil {
				return ruleError(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					segmentJSON
					Count int `json:"count"`
					Total int `json:"total"`
				}{toSegmentJSON(m.Segment), m.Count, m.Total})
			}
			s, w := m.Segment, cmd.OutOrStdout()
			fmt.Fprintf(w, "%s (version %d, %s by %s)\n", s.Name, s.Version, s.Time.Format(time.DateTime), s.Author)
			if s.Description != "" {
				fmt.Fprintf(w, "  %s\n", s.Description)
			}
			if s.Purpose != "" {
				fmt.Fprintf(w, "  purpose: %s\n", s.Purpose)
			}
			fmt.Fprintf(w, "  rule:    %s\n  matches: %d of %d profiles\n", s.Rule, m.Count, m.Total)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newSegmentDeleteCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a segment (its history is kept)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			s, err := eng.DeleteSegment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), toSegmentJSON(s))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s (version %d records the deletion)\n", s.Name, s.Version)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newSegmentHistoryCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history NAME [--json]",
		Short: "Every saved version of a segment, with time and author",
		Args:  cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			vs, err := eng.SegmentHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]segmentJSON, 0, len(vs))
				for _, s := range vs {
					out = append(out, toSegmentJSON(s))
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tTIME\tAUTHOR\tPURPOSE\tRULE")
			for _, s := range vs {
				rule := oneLine(s.Rule)
				if s.Deleted {
					rule = "(deleted)"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", s.Version, s.Time.Format(time.RFC3339), s.Author, dash(s.Purpose), rule)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newSegmentMembersCmd(g *globalFlags) *cobra.Command {
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "members NAME [--limit N] [--json]",
		Short: "List the profiles a segment matches now, by profile id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return withCode(ExitUsage, fmt.Errorf("--limit %d: must be 0 or more", limit))
			}
			eng, err := g.openEngine()
			if err != nil {
				return err
			}
			defer eng.Close()
			m, err := eng.SegmentMembers(cmd.Context(), args[0], limit)
			if err != nil {
				return ruleError(err)
			}
			errs := m.Errors
			if errs == nil {
				errs = []engine.RuleRowError{}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					Segment string                  `json:"segment"`
					Version int                     `json:"version"`
					Count   int                     `json:"count"`
					Total   int                     `json:"total"`
					Members []engine.ProfileSummary `json:"members"`
					Errors  []engine.RuleRowError   `json:"errors"`
				}{m.Segment.Name, m.Segment.Version, m.Count, m.Total, m.Members, errs})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s version %d: %d of %d profiles", m.Segment.Name, m.Segment.Version, m.Count, m.Total)
			if len(m.Members) < m.Count {
				fmt.Fprintf(w, " (first %d shown)", len(m.Members))
			}
			fmt.Fprintln(w)
			printRowErrors(w, m.Errors, len(m.Errors))
			if len(m.Members) > 0 {
				printSummaries(w, m.Members)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "members to list")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newSegmentOverlapCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "overlap A B [--json]",
		Short: "Sizes of A∩B, A−B and B−A",
		Args:  cobra.ExactArgs(2),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			ov, err := eng.SegmentOverlap(cmd.Context(), args[0], args[1])
			if err != nil {
				return ruleError(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), ov)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "both %s and %s: %d\nonly %s: %d\nonly %s: %d\n", ov.A, ov.B, ov.Both, ov.A, ov.OnlyA, ov.B, ov.OnlyB)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newSegmentExportCmd(g *globalFlags) *cobra.Command {
	var format, outPath, columns string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "export NAME --format csv|ndjson -o FILE [--columns email,user_id,trait.plan]",
		Short: "Export a segment's members (consent-aware; audited)",
		Long: `Export the profiles a segment matches now. When consent data exists, only
profiles whose consent allows the segment's purpose are written, and the number
left out is printed. Erased or suppressed subjects never appear. Every export is
recorded in the audit log (who, when, segment, version, count).

Columns: id, email, user_id, phone, anonymous_id, device_id, first_seen,
last_seen, event_count, trait.NAME. -o - writes to standard output.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "csv" && format != "ndjson" {
				return withCode(ExitUsage, fmt.Errorf("--format %q: want csv or ndjson", format))
			}
			if outPath == "" {
				return withCode(ExitUsage, errors.New("-o FILE is required (- for standard output)"))
			}
			var cols []string
			if columns != "" {
				for _, c := range strings.Split(columns, ",") {
					if c = strings.TrimSpace(c); c != "" {
						cols = append(cols, c)
					}
				}
			}
			eng, err := g.openEngine()
			if err != nil {
				return err
			}
			defer eng.Close()
			// Write to a temporary file next to the target and rename on
			// success, so a failed export leaves no partial file.
			var w io.Writer = cmd.OutOrStdout()
			var tmp *os.File
			if outPath != "-" {
				tmp, err = os.CreateTemp(filepath.Dir(outPath), "."+filepath.Base(outPath)+".*")
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				defer os.Remove(tmp.Name())
				defer tmp.Close()
				w = tmp
			}
			res, err := eng.ExportSegment(cmd.Context(), args[0], w, engine.ExportOptions{Format: format, Columns: cols, Target: outPath})
			if err != nil {
				return ruleError(err)
			}
			if tmp != nil {
				if err := tmp.Sync(); err != nil {
					return fmt.Errorf("export: %w", err)
				}
				if err := tmp.Close(); err != nil {
					return fmt.Errorf("export: %w", err)
				}
				if err := os.Rename(tmp.Name(), outPath); err != nil {
					return fmt.Errorf("export: %w", err)
				}
			}
			// The report goes to stderr when the rows go to stdout.
			rw := cmd.OutOrStdout()
			if outPath == "-" {
				rw = cmd.ErrOrStderr()
			}
			if asJSON {
				return printJSON(rw, res)
			}
			fmt.Fprintf(rw, "exported %d profiles of segment %s version %d to %s\n", res.Exported, res.Segment, res.Version, outPath)
			switch {
			case res.Purpose == "":
				fmt.Fprintln(rw, "  the segment has no purpose: not filtered by consent")
			default:
				fmt.Fprintf(rw, "  suppressed for lack of consent (%s): %d\n", res.Purpose, res.SuppressedNoConsent)
			}
			if res.Suppressed > 0 {
				fmt.Fprintf(rw, "  erased or suppressed subjects left out: %d\n", res.Suppressed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "csv", "csv or ndjson")
	cmd.Flags().StringVarP(&outPath, "output", "o", "", "file to write (- for standard output)")
	cmd.Flags().StringVar(&columns, "columns", "", "comma-separated columns (default id,email,user_id and the key traits)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the export report as JSON")
	return cmd
}
