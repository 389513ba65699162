package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/loupe-cdp/loupe/engine"
)

func newStatsCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count profiles, events, identifiers, merges and rejects",
		Args:  cobra.NoArgs,
		RunE: g.withEngine(func(cmd *cobra.Command, _ []string, eng *engine.Engine) error {
			st, err := eng.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "data dir        %s\n", eng.Dir())
			fmt.Fprintf(w, "profiles        %s\nevents          %s\n", commas(st.Profiles), commas(st.Events))
			for _, k := range sortedKeys(st.Identifiers) {
				fmt.Fprintf(w, "  %-13s %s\n", k, commas(st.Identifiers[k]))
			}
			fmt.Fprintf(w, "merges          %s\nrefused merges  %s\nblocked ids     %s\nrejected lines  %s\nsuppressed      %s\n",
				commas(st.Merges), commas(st.RefusedMerges), commas(st.Blocked), commas(st.Rejected), commas(st.Suppressed))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newWhyCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "why TYPE:VALUE TYPE:VALUE",
		Short: "Explain how two identifiers were joined, or which refused merges keep them apart",
		Args:  cobra.ExactArgs(2),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			res, err := eng.Why(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			if res.Connected {
				fmt.Fprintf(w, "%s and %s are the same profile, joined by %d link(s):\n", args[0], args[1], len(res.Path))
				for _, l := range res.Path {
					fmt.Fprintf(w, "  %s -> %s  by %s at %s\n", l.From, l.To, l.MessageID, fmtTime(l.Time))
				}
				return nil
			}
			fmt.Fprintf(w, "%s and %s are not connected.\n", args[0], args[1])
			if len(res.Refused) > 0 {
				fmt.Fprintln(w, "Refused merges between their profiles:")
				for _, r := range res.Refused {
					fmt.Fprintf(w, "  %s at %s: %s; dropped %s\n", r.MessageID, fmtTime(r.Time), r.Reason, strings.Join(r.Dropped, ", "))
				}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newUnmergeCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "unmerge TYPE:VALUE",
		Short: "Detach an identifier from its profile and split the profile by its remaining links",
		Args:  cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			res, err := eng.Unmerge(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "detached %s from %s: now %s (%d events moved, %d links cut)\n",
				res.Identifier, res.From, strings.Join(res.Profiles, ", "), res.Moved, res.CutLinks)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
