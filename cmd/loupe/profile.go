package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/loupe-cdp/loupe/engine"
)

func newProfileCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Show unified profiles and their events",
	}
	cmd.AddCommand(newProfileShowCmd(g), newProfileEventsCmd(g))
	for _, add := range profileSubcommands {
		cmd.AddCommand(add(g))
	}
	return cmd
}

// profileSubcommands lets other files add `profile` subcommands.
var profileSubcommands []func(*globalFlags) *cobra.Command

func newProfileShowCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show REF",
		Short: "Show a profile: identities, traits with provenance, event aggregates",
		Long: `Show the unified profile REF names. A REF is a profile id (p42; merged-away
ids resolve to the surviving profile) or TYPE:VALUE, e.g. email:ann@example.com,
user_id:u1, anonymous_id:a1, phone:+14155550100, device_id:d1.`,
		Args: cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			p, err := eng.Profile(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), p)
			}
			printProfile(cmd.OutOrStdout(), p)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the profile as JSON")
	return cmd
}

func printProfile(w io.Writer, p *engine.Profile) {
	fmt.Fprintf(w, "profile     %s\n", p.ID)
	if len(p.MergedIDs) > 0 {
		fmt.Fprintf(w, "merged      %s\n", strings.Join(p.MergedIDs, ", "))
	}
	fmt.Fprintf(w, "first seen  %s\nlast seen   %s\nevents      %d\n", fmtTime(p.FirstSeen), fmtTime(p.LastSeen), p.EventCount)
	fmt.Fprintln(w, "\nidentities")
	for _, id := range p.Identities {
		fmt.Fprintf(w, "  %-13s %-40s %s .. %s\n", id.Type, id.Value, fmtTime(id.FirstSeen), fmtTime(id.LastSeen))
	}
	for _, b := range p.Blocked {
		fmt.Fprintf(w, "  %-13s %-40s blocked, seen %d times\n", b.Type, fmt.Sprintf("%q", b.Value), b.Count)
	}
	if len(p.Traits) > 0 {
		fmt.Fprintln(w, "\ntraits")
		for _, k := range sortedKeys(p.Traits) {
			t := p.Traits[k]
			fmt.Fprintf(w, "  %-16s %-30v %s  %s", k, t.Value, fmtTime(t.Time), t.MessageID)
			if t.Source == "rectification" {
				fmt.Fprintf(w, "  (rectified: %s)", t.Reason)
			}
			if len(t.History) > 0 {
				fmt.Fprintf(w, "  [%d earlier]", len(t.History))
			}
			fmt.Fprintln(w)
		}
	}
	if len(p.Events) > 0 {
		fmt.Fprintln(w, "\nevents")
		for _, k := range sortedKeys(p.Events) {
			e := p.Events[k]
			fmt.Fprintf(w, "  %-22s %6d  %s .. %s", k, e.Count, fmtTime(e.First), fmtTime(e.Last))
			for _, s := range sortedKeys(e.Sums) {
				fmt.Fprintf(w, "  %s=%.2f", s, e.Sums[s])
			}
			fmt.Fprintln(w)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func newProfileEventsCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "events REF [--limit N]",
		Short: "List a profile's events, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			page, err := eng.Events(cmd.Context(), args[0], "", limit)
			if err != nil {
				return err
			}
			if asJSON {
				evs := page.Events
				if evs == nil {
					evs = []engine.StoredEvent{}
				}
				return printJSON(cmd.OutOrStdout(), evs)
			}
			for _, ev := range page.Events {
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %-8s %-24s %s  (%s)\n", fmtTime(ev.Time), ev.Type, ev.Name, ev.MessageID, ev.ProfileID)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the events as a JSON array")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many events")
	return cmd
}
