package tui

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/tui/common"
	"github.com/loupe-cdp/loupe/tui/keys"
	"github.com/loupe-cdp/loupe/tui/theme"
	"github.com/loupe-cdp/loupe/tui/views/profiles"
	syncview "github.com/loupe-cdp/loupe/tui/views/sync"
)

// Options configure Run.
type Options struct {
	// NoColor turns colour off (NO_COLOR in the environment does too).
	NoColor bool
	// Mouse enables the mouse wheel; off by default so the terminal's own
	// text selection keeps working.
	Mouse bool
	// KeyBindings rebinds actions: action name -> keys (loupe.yaml
	// tui.keys). Unknown actions and collisions are errors.
	KeyBindings map[string][]string
	// KeyTraits are the trait columns of the profile list; default the
	// data dir's profiles.key_traits.
	KeyTraits []string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Input and Output default to the terminal.
	Input  io.Reader
	Output io.Writer
}

// NewContext builds the shared context, applying key bindings and
// checking them for collisions.
func NewContext(ctx context.Context, b common.Backend, opts Options) (*common.Context, error) {
	c := &common.Context{
		Ctx:       ctx,
		Backend:   b,
		Styles:    theme.New(),
		Global:    keys.DefaultGlobal(),
		Nav:       keys.DefaultNav(),
		Now:       opts.Now,
		KeyTraits: opts.KeyTraits,
		ViewKeys:  opts.KeyBindings,
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.KeyTraits) == 0 {
		// The configured columns: discovering traits would mean building
		// the whole rules snapshot before the first frame.
		c.KeyTraits = b.Config().Profiles.KeyTraits
	}
	if len(c.KeyTraits) > 4 {
		c.KeyTraits = c.KeyTraits[:4]
	}
	return c, nil
}

// NewApp builds the root model and applies the key bindings of opts.
func NewApp(c *common.Context, bindings map[string][]string) (*App, error) {
	a := New(c)
	pk, sk := a.Profiles.Keys, a.Sync.Keys
	if err := keys.Rebind(bindings, c.Global, c.Nav, pk, sk); err != nil {
		return nil, err
	}
	if err := CheckKeys(c.Global, c.Nav, pk, sk); err != nil {
		return nil, err
	}
	return a, nil
}

// CheckKeys fails when two bindings collide in one view: each view's own
// keys are active together with the navigation keys and the globals.
func CheckKeys(g *keys.Global, n *keys.Nav, pk *profiles.KeyMap, sk *syncview.KeyMap) error {
	if err := keys.CheckCollisions("profiles", g, n, pk); err != nil {
		return err
	}
	return keys.CheckCollisions("sync", g, n, sk)
}

// Run opens the workbench on eng until the user quits or ctx ends. It
// takes the terminal (alternate screen) and gives it back on return.
//
// Note: bubbletea v1 asks the terminal for its background colour at start
// (for the adaptive palette); a terminal that never answers delays the
// first frame by the query's timeout.
func Run(ctx context.Context, eng *engine.Engine, opts Options) error {
	if opts.NoColor || os.Getenv("NO_COLOR") != "" {
		theme.SetNoColor(true)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := NewContext(ctx, NewBackend(eng), opts)
	if err != nil {
		return err
	}
	app, err := NewApp(c, opts.KeyBindings)
	if err != nil {
		return err
	}
	popts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx)}
	if opts.Mouse {
		popts = append(popts, tea.WithMouseCellMotion())
	}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		popts = append(popts, tea.WithOutput(opts.Output))
	}
	_, err = tea.NewProgram(app, popts...).Run()
	killed := err == tea.ErrProgramKilled && ctx.Err() != nil
	// A sync still running is cancelled with the context; wait for its
	// current page to commit or roll back before the caller closes the
	// engine.
	cancel()
	app.Sync.Wait(30 * time.Second)
	if killed {
		return nil
	}
	return err
}

// clipboardCopy puts s on the system clipboard through the platform's
// tool when there is one, else through the terminal with OSC 52 (which
// works over SSH in terminals that allow it).
func clipboardCopy(s string) (string, error) {
	for _, tool := range [][]string{{"pbcopy"}, {"wl-copy"}, {"xclip", "-selection", "clipboard"}, {"xsel", "--clipboard", "--input"}} {
		if os.Getenv("SSH_CONNECTION") != "" {
			break
		}
		if tool[0] != "pbcopy" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			continue
		}
		path, err := exec.LookPath(tool[0])
		if err != nil {
			continue
		}
		cmd := exec.Command(path, tool[1:]...)
		cmd.Stdin = strings.NewReader(s)
		if err := cmd.Run(); err == nil {
			return tool[0], nil
		}
	}
	termenv.NewOutput(os.Stdout).Copy(s)
	return "OSC 52", nil
}
