// Package tui is Loupe's workbench: a bubbletea program whose root model
// routes messages to one model per view (Profiles and Sync; Segments,
// Consent and Identity arrive with later issues).
//
// Layout: a header (tabs, data dir, counts), the focused view, a status
// line (messages, errors, the spinner while the engine works) and a footer
// built from the focused view's key bindings. Engine calls never run in
// Update or View: views return tea.Cmds whose results carry a generation
// number, and stale results are dropped.
package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/tui/common"
	"github.com/loupe-cdp/loupe/tui/components"
	"github.com/loupe-cdp/loupe/tui/layout"
	"github.com/loupe-cdp/loupe/tui/theme"
	"github.com/loupe-cdp/loupe/tui/views/profiles"
	syncview "github.com/loupe-cdp/loupe/tui/views/sync"
)

// Minimum terminal size.
const (
	MinWidth  = 80
	MinHeight = 24
)

type statsMsg struct {
	gen   uint64
	stats engine.Stats
	err   error
}

// snapshotWarmMsg says the engine's rules snapshot is built (or why not).
type snapshotWarmMsg struct{ err error }

type copiedMsg struct {
	how string
	err error
}

// App is the root model.
type App struct {
	c        *common.Context
	views    []common.View
	Profiles *profiles.Model
	Sync     *syncview.Model
	active   int
	w, h     int

	status    string
	statusErr bool

	help     help.Model
	fullHelp bool
	helpPane components.TextPane

	cmdOpen bool
	cmdline components.Input

	spinner  spinner.Model
	spinning bool

	stats    engine.Stats
	statsReq common.Latest

	// copy puts text on the clipboard; tests replace it.
	copy func(string) (string, error)
	// noSpinner keeps the spinner still (tests run commands synchronously
	// and would otherwise sleep on its ticks).
	noSpinner bool
	// dirLabel replaces the data dir in the header (tests, for stable
	// goldens).
	dirLabel string
}

// New builds the root model over a backend.
func New(c *common.Context) *App {
	a := &App{c: c, copy: clipboardCopy}
	a.Profiles = profiles.New(c)
	a.Sync = syncview.New(c)
	a.views = []common.View{
		a.Profiles,
		&placeholder{title: "Segments", note: "Segments arrive with the segments issue (:segments)."},
		&placeholder{title: "Consent", note: "Consent arrives with the consent issue (:consent REF)."},
		&placeholder{title: "Identity", note: "The identity graph view arrives with a later issue."},
		a.Sync,
	}
	a.help = help.New()
	a.help.ShortSeparator = " · "
	a.help.Styles.ShortKey = c.Styles.Key
	a.help.Styles.ShortDesc = c.Styles.Desc
	a.help.Styles.FullKey = c.Styles.Key
	a.help.Styles.FullDesc = c.Styles.Desc
	a.spinner = spinner.New(spinner.WithSpinner(spinner.Line))
	a.cmdline.Prompt = ":"
	a.helpPane.Title = "Help: keys (esc or ? closes)"
	return a
}

// Init loads the header counts, starts every view and builds the
// engine's rules snapshot in the background: search, filters, sorts and
// trait frequencies all read it, and over a million profiles it takes
// tens of seconds, better spent before the first `/` than after it.
func (a *App) Init() tea.Cmd {
	cmds := []tea.Cmd{a.loadStats()}
	for _, v := range a.views {
		cmds = append(cmds, v.Init())
	}
	b, ctx := a.c.Backend, a.c.Ctx
	warm := func() tea.Msg { return snapshotWarmMsg{err: b.WarmSnapshot(ctx)} }
	// Last: a runner that takes commands in turn (the benchmarks) reaches
	// the first screen before it.
	return tea.Batch(append(cmds, warm)...)
}

func (a *App) loadStats() tea.Cmd {
	ctx, gen := a.statsReq.Start(a.c.Ctx)
	b := a.c.Backend
	return func() tea.Msg {
		s, err := b.Stats(ctx)
		return statsMsg{gen: gen, stats: s, err: err}
	}
}

// View reports the active view (for tests).
func (a *App) Active() int { return a.active }

// Status is the status line's text (for tests).
func (a *App) Status() (string, bool) { return a.status, a.statusErr }

func (a *App) view() common.View { return a.views[a.active] }

func (a *App) tooSmall() bool { return a.w < MinWidth || a.h < MinHeight }

// bodyHeight is what the view gets: all but header, status and footer.
func (a *App) bodyHeight() int { return max(0, a.h-3) }

func (a *App) resize() {
	for _, v := range a.views {
		v.SetSize(a.w, a.bodyHeight())
	}
	a.help.Width = a.w
	a.helpPane.SetSize(a.w, a.bodyHeight())
	a.cmdline.Width = a.w
}

// Update implements tea.Model.
func (a *App) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		a.w, a.h = msg.Width, msg.Height
		a.resize()
		return a, a.view().Update(msg)
	case tea.KeyMsg:
		cmds = append(cmds, a.key(msg))
	case common.StatusMsg:
		a.status, a.statusErr = msg.Text, msg.Err
	case common.RefreshStatsMsg:
		cmds = append(cmds, a.loadStats())
	case common.DataChangedMsg:
		cmds = append(cmds, a.loadStats())
		for _, v := range a.views {
			cmds = append(cmds, v.Update(msg))
		}
	case snapshotWarmMsg:
		if msg.err != nil && a.c.Ctx.Err() == nil {
			a.status, a.statusErr = "snapshot: "+msg.err.Error(), true
		}
	case statsMsg:
		if a.statsReq.Accept(msg.gen) {
			if msg.err != nil {
				a.status, a.statusErr = "stats: "+msg.err.Error(), true
			} else {
				a.stats = msg.stats
			}
		}
	case copiedMsg:
		if msg.err != nil {
			a.status, a.statusErr = "copy: "+msg.err.Error(), true
		} else {
			a.status, a.statusErr = "copied to the clipboard ("+msg.how+")", false
		}
	case spinner.TickMsg:
		if !a.loading() {
			a.spinning = false
			return a, nil
		}
		var cmd tea.Cmd
		a.spinner, cmd = a.spinner.Update(msg)
		cmds = append(cmds, cmd)
	case tea.MouseMsg:
		cmds = append(cmds, a.view().Update(msg))
	default:
		// Results of engine work and other messages go to every view;
		// each drops what is not its own or is stale.
		for _, v := range a.views {
			cmds = append(cmds, v.Update(msg))
		}
	}
	if a.loading() && !a.spinning && !a.noSpinner {
		a.spinning = true
		cmds = append(cmds, a.spinner.Tick)
	}
	return a, tea.Batch(cmds...)
}

func (a *App) loading() bool { return a.statsReq.Busy() || a.view().Loading() }

func (a *App) key(k tea.KeyMsg) tea.Cmd {
	g := a.c.Global
	if key.Matches(k, g.ForceQuit) {
		return tea.Quit
	}
	if a.cmdOpen {
		return a.cmdKey(k)
	}
	if a.fullHelp {
		switch {
		case key.Matches(k, g.Help), key.Matches(k, g.Back), key.Matches(k, g.Quit):
			a.fullHelp = false
		case key.Matches(k, a.c.Nav.Down):
			a.helpPane.Scroll(1)
		case key.Matches(k, a.c.Nav.Up):
			a.helpPane.Scroll(-1)
		}
		return nil
	}
	v := a.view()
	if v.Capturing() {
		// A focused text field takes every key: typing q types a q.
		return v.Update(k)
	}
	switch {
	case key.Matches(k, g.Quit):
		return tea.Quit
	case key.Matches(k, g.Help):
		a.fullHelp = true
		a.helpPane.SetText(a.fullHelpText())
		return nil
	case key.Matches(k, g.Command):
		a.cmdOpen = true
		a.cmdline.SetValue("")
		a.cmdline.Focus()
		return nil
	case key.Matches(k, g.NextTab):
		a.switchTab((a.active + 1) % len(a.views))
		return nil
	case key.Matches(k, g.PrevTab):
		a.switchTab((a.active + len(a.views) - 1) % len(a.views))
		return nil
	case g.TabIndex(k) >= 0:
		a.switchTab(min(g.TabIndex(k), len(a.views)-1))
		return nil
	case key.Matches(k, g.Suspend):
		return tea.Suspend
	case key.Matches(k, g.Redraw):
		return tea.ClearScreen
	case key.Matches(k, g.Back):
		cmd, _ := v.Back()
		a.status, a.statusErr = "", false
		return cmd
	case key.Matches(k, g.Copy):
		s, ok := v.Copy()
		if !ok {
			return common.Status("nothing to copy here", true)
		}
		cp := a.copy
		return func() tea.Msg {
			how, err := cp(s)
			return copiedMsg{how: how, err: err}
		}
	}
	return v.Update(k)
}

func (a *App) switchTab(i int) {
	if i >= 0 && i < len(a.views) {
		a.active = i
	}
}

// cmdKey edits and runs the `:` command line.
func (a *App) cmdKey(k tea.KeyMsg) tea.Cmd {
	switch k.Type {
	case tea.KeyEsc:
		a.cmdOpen = false
		a.cmdline.Blur()
		return nil
	case tea.KeyEnter:
		a.cmdOpen = false
		a.cmdline.Blur()
		return a.runCommand(a.cmdline.Value())
	}
	a.cmdline.Update(k)
	return nil
}

// Commands lists the `:` commands for the help.
var Commands = [][2]string{
	{"profile REF", "open a profile by id or TYPE:VALUE"},
	{"segments", "go to the Segments tab"},
	{"consent REF", "go to the Consent tab for REF"},
	{"sort last_seen|first_seen|events", "sort the profile list"},
	{"sync", "go to the Sync tab"},
	{"quit", "leave the workbench"},
}

func (a *App) runCommand(line string) tea.Cmd {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	arg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), fields[0]))
	switch fields[0] {
	case "q", "quit", "q!":
		return tea.Quit
	case "profile", "p":
		if arg == "" {
			return common.Status(":profile needs a REF (p123 or email:ann@example.com)", true)
		}
		a.switchTab(0)
		return func() tea.Msg { return common.OpenProfileMsg{Ref: arg} }
	case "segments":
		a.switchTab(1)
		return nil
	case "consent":
		a.switchTab(2)
		if arg != "" {
			return common.Status("consent for "+arg+": the consent view is not available yet", false)
		}
		return nil
	case "identity":
		a.switchTab(3)
		return nil
	case "sync":
		a.switchTab(4)
		return nil
	case "sort":
		a.switchTab(0)
		return a.Profiles.SetSort(arg)
	}
	return common.Status(fmt.Sprintf("unknown command %q (try :profile REF, :segments, :consent REF, :quit)", fields[0]), true)
}

// fullHelpText is the `?` screen: the view's keys, globals and commands.
func (a *App) fullHelpText() string {
	var b strings.Builder
	write := func(title string, bs []key.Binding) {
		b.WriteString(title + "\n")
		for _, k := range bs {
			if !k.Enabled() || k.Help().Key == "" {
				continue
			}
			fmt.Fprintf(&b, "  %-14s %s\n", k.Help().Key, k.Help().Desc)
		}
		b.WriteString("\n")
	}
	groups := a.view().FullHelp()
	if len(groups) > 0 {
		write("Navigation", groups[0])
	}
	for _, gr := range groups[1:] {
		write(a.view().Title(), gr)
	}
	g := a.c.Global
	write("Global", []key.Binding{g.Help, g.Command, g.NextTab, g.PrevTab, g.Tab1, g.FocusNext, g.FocusPrev, g.Back, g.Copy, g.Redraw, g.Suspend, g.Quit, g.ForceQuit})
	b.WriteString("Commands\n")
	for _, c := range Commands {
		fmt.Fprintf(&b, "  :%-33s %s\n", c[0], c[1])
	}
	return b.String()
}

// View implements tea.Model: exactly the terminal's size.
func (a *App) View() string {
	if a.w <= 0 || a.h <= 0 {
		return ""
	}
	if a.tooSmall() {
		msg := fmt.Sprintf("Terminal too small: %dx%d\nLoupe needs at least %dx%d.\nEnlarge the window, or press q to quit.", a.w, a.h, MinWidth, MinHeight)
		lines := strings.Split(msg, "\n")
		top := max(0, (a.h-len(lines))/2)
		var out []string
		for i := 0; i < top; i++ {
			out = append(out, "")
		}
		for _, l := range lines {
			out = append(out, strings.Repeat(" ", max(0, (a.w-len(l))/2))+l)
		}
		return layout.Fit(strings.Join(out, "\n"), a.w, a.h)
	}
	var body string
	if a.fullHelp {
		body = a.helpPane.View(a.c.Styles)
	} else {
		body = a.view().View()
	}
	return layout.FitLine(a.header(), a.w) + "\n" +
		layout.Fit(body, a.w, a.bodyHeight()) + "\n" +
		layout.FitLine(a.statusLine(), a.w) + "\n" +
		layout.FitLine(a.footer(), a.w)
}

func (a *App) header() string {
	st := a.c.Styles
	var tabs []string
	for i, v := range a.views {
		t := strconv.Itoa(i+1) + " " + v.Title()
		if i == a.active {
			tabs = append(tabs, st.TabActive.Render("["+t+"]"))
		} else {
			tabs = append(tabs, st.TabInactive.Render(" "+t+" "))
		}
	}
	left := st.Title.Render("Loupe") + " " + strings.Join(tabs, "")
	info := layout.Thousands(a.stats.Profiles) + " profiles · " + layout.Thousands(a.stats.Events) + " events"
	if layout.Width(left)+layout.Width(info)+1 > a.w {
		// Narrow: inactive tabs shrink to their number.
		tabs = tabs[:0]
		for i, v := range a.views {
			if i == a.active {
				tabs = append(tabs, st.TabActive.Render("["+strconv.Itoa(i+1)+" "+v.Title()+"]"))
			} else {
				tabs = append(tabs, st.TabInactive.Render(" "+strconv.Itoa(i+1)+" "))
			}
		}
		left = st.Title.Render("Loupe") + " " + strings.Join(tabs, "")
	}
	dir := a.c.Backend.Dir()
	if a.dirLabel != "" {
		dir = a.dirLabel
	}
	lw := layout.Width(left)
	room := a.w - lw - layout.Width(info) - 5
	if room >= 8 {
		info = layout.TruncateLeft(dir, room) + " · " + info
	}
	return left + strings.Repeat(" ", max(1, a.w-lw-layout.Width(info))) + st.HeaderInfo.Render(info)
}

func (a *App) statusLine() string {
	st := a.c.Styles
	if a.cmdOpen {
		return a.cmdline.View(st)
	}
	var prefix string
	if a.loading() {
		prefix = a.spinner.View() + " " + theme.GlyphBusy + " loading" + theme.GlyphEllipsis + " "
	}
	switch {
	case a.status == "":
		return prefix
	case a.statusErr:
		return prefix + st.StatusErr.Render(theme.GlyphErr+" "+a.status)
	}
	return prefix + st.StatusOK.Render(theme.GlyphOK+" "+a.status)
}

// footer is the focused view's bindings, then the globals it lacks.
func (a *App) footer() string {
	g := a.c.Global
	bs := a.view().ShortHelp()
	seen := map[string]bool{}
	for _, b := range bs {
		seen[b.Help().Key] = true
	}
	for _, b := range []key.Binding{g.Help, g.Command, g.Quit} {
		if !seen[b.Help().Key] {
			bs = append(bs, b)
		}
	}
	if a.fullHelp {
		bs = []key.Binding{a.c.Nav.Down, a.c.Nav.Up, withDesc(g.Help, "close help")}
	}
	return a.help.ShortHelpView(bs)
}

func withDesc(b key.Binding, d string) key.Binding {
	b.SetHelp(b.Help().Key, d)
	return b
}
