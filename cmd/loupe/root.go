package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/loupe-cdp/loupe/engine"
)

// globalFlags are the flags every command shares.
type globalFlags struct {
	data              string
	encryptionKeyFile string
	verbose           bool
	noColor           bool
	mouse             bool
	cpuProfile        string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "loupe",
		Short: "A terminal workbench for customer data",
		Long: `Loupe ingests Segment-spec events into unified customer profiles on a local
store, and lets you browse, segment, explain and govern them.

With no command it opens the workbench on the data dir.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.data, "data", "", "data dir (default $LOUPE_DATA, else $XDG_DATA_HOME/loupe)")
	pf.StringVar(&g.encryptionKeyFile, "encryption-key-file", "", "file holding the key that encrypts the data dir at rest (16, 24 or 32 bytes, raw or hex)")
	pf.BoolVar(&g.verbose, "verbose", false, "log Badger's own messages to stderr")
	pf.BoolVar(&g.noColor, "no-color", false, "workbench without colour (NO_COLOR is honoured too)")
	pf.BoolVar(&g.mouse, "mouse", false, "workbench: enable the mouse wheel (off keeps the terminal's text selection)")
	// --cpuprofile is for measuring (BENCHMARKS.md), not for users.
	pf.StringVar(&g.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the command to `FILE`")
	pf.MarkHidden("cpuprofile")
	var profile *os.File
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if g.cpuProfile == "" {
			return nil
		}
		f, err := os.Create(g.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		profile = f
		return pprof.StartCPUProfile(f)
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if profile != nil {
			pprof.StopCPUProfile()
			profile.Close()
		}
	}
	root.AddCommand(
		newIngestCmd(g),
		newProfileCmd(g),
		newStatsCmd(g),
		newWhyCmd(g),
		newUnmergeCmd(g),
		newDemoCmd(g),
	)
	for _, add := range extraCommands {
		root.AddCommand(add(g))
	}
	if rootRun != nil {
		root.RunE = func(cmd *cobra.Command, args []string) error { return rootRun(cmd, g) }
	}
	return root
}

// extraCommands and rootRun let command files register themselves, so that
// each area (TUI, sync, compliance, segments) keeps its commands in its own
// file.
var (
	extraCommands []func(*globalFlags) *cobra.Command
	rootRun       func(*cobra.Command, *globalFlags) error
)

// dataDir resolves --data, $LOUPE_DATA, $XDG_DATA_HOME/loupe, then
// ~/.local/share/loupe.
func (g *globalFlags) dataDir() (string, error) {
	if g.data != "" {
		return g.data, nil
	}
	if d := os.Getenv("LOUPE_DATA"); d != "" {
		return d, nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "loupe"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no --data given and no home dir: %w", err)
	}
	return filepath.Join(home, ".local", "share", "loupe"), nil
}

// engineOptions builds engine options from the flags.
func (g *globalFlags) engineOptions() (engine.Options, error) {
	opts := engine.Options{Verbose: g.verbose}
	if g.verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if g.encryptionKeyFile != "" {
		key, err := readKeyFile(g.encryptionKeyFile)
		if err != nil {
			return opts, withCode(ExitUsage, err)
		}
		opts.EncryptionKey = key
	}
	return opts, nil
}

// openEngine opens the data dir.
func (g *globalFlags) openEngine() (*engine.Engine, error) {
	dir, err := g.dataDir()
	if err != nil {
		return nil, err
	}
	opts, err := g.engineOptions()
	if err != nil {
		return nil, err
	}
	return engine.Open(dir, opts)
}

// withEngine adapts a command body that needs the data dir open: it opens
// the engine, runs fn, and closes it.
func (g *globalFlags) withEngine(fn func(cmd *cobra.Command, args []string, eng *engine.Engine) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		eng, err := g.openEngine()
		if err != nil {
			return err
		}
		defer eng.Close()
		return fn(cmd, args, eng)
	}
}

// readKeyFile reads a raw 16/24/32-byte key, or the same in hex.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if n := len(s); n == 32 || n == 48 || n == 64 {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, fmt.Errorf("encryption key file %s: want 16, 24 or 32 bytes (raw) or 32, 48 or 64 hex digits, got %d bytes", path, len(b))
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
