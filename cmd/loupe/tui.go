package main

import (
	"github.com/spf13/cobra"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/tui"
)

// The workbench: `loupe`, `loupe tui`, and `loupe demo` after generating.
func init() {
	extraCommands = append(extraCommands, newTUICmd)
	rootRun = func(cmd *cobra.Command, g *globalFlags) error { return openWorkbench(cmd, g) }
	demoOpensTUI = func(cmd *cobra.Command, g *globalFlags, eng *engine.Engine) error {
		return runWorkbench(cmd, g, eng)
	}
}

func newTUICmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tui",
		Short: "Open the workbench on the data dir (also: loupe with no command)",
		Long: `Open the workbench: browse profiles, search identifiers, filter by rule,
see trait provenance and event JSON. Emails and phones are masked; R reveals
them for one profile after asking for a reason, and the reveal is audited.

--mouse enables the mouse wheel (off by default so the terminal's own text
selection keeps working). NO_COLOR or --no-color turns colour off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return openWorkbench(cmd, g) },
	}
	return cmd
}

func openWorkbench(cmd *cobra.Command, g *globalFlags) error {
	eng, err := g.openEngine()
	if err != nil {
		return err
	}
	defer eng.Close()
	return runWorkbench(cmd, g, eng)
}

func runWorkbench(cmd *cobra.Command, g *globalFlags, eng *engine.Engine) error {
	return tui.Run(cmd.Context(), eng, tui.Options{
		NoColor:     g.noColor,
		Mouse:       g.mouse,
		KeyBindings: eng.Config().TUI.Keys,
		KeyTraits:   eng.Config().Profiles.KeyTraits,
	})
}
