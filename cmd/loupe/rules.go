package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/rules"
)

func newRulesCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "The segment rule language: functions and discovered traits",
	}
	cmd.AddCommand(newRulesHelpCmd(), newRulesTraitsCmd(g))
	return cmd
}

// catalogueJSON is the stable --json shape of one `loupe rules help` entry.
type catalogueJSON struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Signature string `json:"signature"`
	Doc       string `json:"doc"`
	Example   string `json:"example"`
}

func newRulesHelpCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "help [--json]",
		Short: "Fields and functions a rule can use, with examples",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat := rules.Catalogue()
			if asJSON {
				out := make([]catalogueJSON, 0, len(cat))
				for _, e := range cat {
					out = append(out, catalogueJSON{e.Name, string(e.Kind), e.Signature, e.Doc, e.Example})
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, "A rule is an expression over one profile that is true for the profiles to keep.")
			fmt.Fprintln(w, `Example: traits.plan == "pro" && event_count("Order Completed", "30d") >= 2`)
			fmt.Fprintln(w, `Windows: "90m", "12h", "30d", "2w". A missing trait is nil; comparisons with nil are false.`)
			for _, kind := range []rules.Kind{rules.KindField, rules.KindFunction} {
				fmt.Fprintf(w, "\n%sS\n", strings.ToUpper(string(kind)))
				for _, e := range cat {
					if e.Kind != kind {
						continue
					}
					fmt.Fprintf(w, "  %s\n      %s\n      e.g. %s\n", e.Signature, e.Doc, e.Example)
				}
			}
			fmt.Fprintln(w, "\nPlus expr's builtins: len, lower, upper, trim, all, any, none, filter, map, count, date, duration, abs, round, ...")
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newRulesTraitsCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "traits [--json]",
		Short: "Trait keys found in the profiles, with their types and most frequent values",
		Args:  cobra.NoArgs,
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			infos, err := eng.Traits(cmd.Context())
			if err != nil {
				return err
			}
			if infos == nil {
				infos = []engine.TraitInfo{}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), infos)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TRAIT\tPROFILES\tTYPES\tTOP VALUES")
			for _, in := range infos {
				var types, top []string
				for _, t := range in.Types {
					types = append(types, t.Type)
				}
				for i, v := range in.Top {
					if i == 5 {
						break
					}
					top = append(top, fmt.Sprintf("%s (%d)", oneLine(v.Value), v.Count))
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", in.Key, in.Count, strings.Join(types, ","), strings.Join(top, ", "))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
