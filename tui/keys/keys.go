// Package keys holds the global and navigation key maps (bubbles/key), and
// rebinding from configuration.
//
// Every binding has an action name ("quit", "down", "search"). The config
// (loupe.yaml `tui.keys`, or tui.Options.KeyBindings) maps action names to
// keys; Rebind applies it and Collisions reports two actions of one view
// bound to the same key, which Run refuses to start with.
package keys

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// Action is a named binding.
type Action struct {
	Name    string
	Binding *key.Binding
}

// Map is a group of named bindings.
type Map interface {
	Actions() []Action
}

// Global bindings work in every view unless a text field has focus.
type Global struct {
	Quit      key.Binding
	ForceQuit key.Binding
	Help      key.Binding
	Command   key.Binding
	NextTab   key.Binding
	PrevTab   key.Binding
	Tab1      key.Binding
	Tab2      key.Binding
	Tab3      key.Binding
	Tab4      key.Binding
	Tab5      key.Binding
	FocusNext key.Binding
	FocusPrev key.Binding
	Back      key.Binding
	Copy      key.Binding
	Suspend   key.Binding
	Redraw    key.Binding
}

// TabIndex is the tab (0-based) whose key k is, or -1.
func (g *Global) TabIndex(k tea.KeyMsg) int {
	for i, b := range []key.Binding{g.Tab1, g.Tab2, g.Tab3, g.Tab4, g.Tab5} {
		if key.Matches(k, b) {
			return i
		}
	}
	return -1
}

// DefaultGlobal is the default global key map.
func DefaultGlobal() *Global {
	return &Global{
		Quit:      key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		ForceQuit: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit now")),
		Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Command:   key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "command")),
		NextTab:   key.NewBinding(key.WithKeys("]"), key.WithHelp("]", "next tab")),
		PrevTab:   key.NewBinding(key.WithKeys("["), key.WithHelp("[", "prev tab")),
		Tab1:      key.NewBinding(key.WithKeys("1"), key.WithHelp("1-5", "tab")),
		Tab2:      key.NewBinding(key.WithKeys("2")),
		Tab3:      key.NewBinding(key.WithKeys("3")),
		Tab4:      key.NewBinding(key.WithKeys("4")),
		Tab5:      key.NewBinding(key.WithKeys("5")),
		FocusNext: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next pane")),
		FocusPrev: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "prev pane")),
		Back:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Copy:      key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy")),
		Suspend:   key.NewBinding(key.WithKeys("ctrl+z"), key.WithHelp("ctrl+z", "suspend")),
		Redraw:    key.NewBinding(key.WithKeys("ctrl+l"), key.WithHelp("ctrl+l", "redraw")),
	}
}

// Actions implements Map.
func (g *Global) Actions() []Action {
	return []Action{
		{"quit", &g.Quit}, {"force_quit", &g.ForceQuit}, {"help", &g.Help}, {"command", &g.Command},
		{"next_tab", &g.NextTab}, {"prev_tab", &g.PrevTab},
		{"tab_1", &g.Tab1}, {"tab_2", &g.Tab2}, {"tab_3", &g.Tab3}, {"tab_4", &g.Tab4}, {"tab_5", &g.Tab5},
		{"focus_next", &g.FocusNext}, {"focus_prev", &g.FocusPrev}, {"back", &g.Back},
		{"copy", &g.Copy}, {"suspend", &g.Suspend}, {"redraw", &g.Redraw},
	}
}

// Nav moves a cursor: vim keys and arrows.
type Nav struct {
	Up       key.Binding
	Down     key.Binding
	Left     key.Binding
	Right    key.Binding
	Top      key.Binding
	Bottom   key.Binding
	HalfDown key.Binding
	HalfUp   key.Binding
	PageDown key.Binding
	PageUp   key.Binding
}

// DefaultNav is the default navigation key map.
func DefaultNav() *Nav {
	return &Nav{
		Up:       key.NewBinding(key.WithKeys("k", "up"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("j", "down"), key.WithHelp("↓/j", "down")),
		Left:     key.NewBinding(key.WithKeys("h", "left"), key.WithHelp("←/h", "column")),
		Right:    key.NewBinding(key.WithKeys("l", "right"), key.WithHelp("→/l", "column")),
		Top:      key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "top")),
		Bottom:   key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "bottom")),
		HalfDown: key.NewBinding(key.WithKeys("ctrl+d"), key.WithHelp("ctrl+d", "half page down")),
		HalfUp:   key.NewBinding(key.WithKeys("ctrl+u"), key.WithHelp("ctrl+u", "half page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "page down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
	}
}

// Actions implements Map.
func (n *Nav) Actions() []Action {
	return []Action{
		{"up", &n.Up}, {"down", &n.Down}, {"left", &n.Left}, {"right", &n.Right},
		{"top", &n.Top}, {"bottom", &n.Bottom}, {"half_down", &n.HalfDown}, {"half_up", &n.HalfUp},
		{"page_down", &n.PageDown}, {"page_up", &n.PageUp},
	}
}

// Rebind applies cfg (action name -> keys) to the maps. An action name
// no map knows is an error, so a typo in the config is not silently
// ignored. An empty key list disables the action.
func Rebind(cfg map[string][]string, maps ...Map) error {
	known := map[string]*key.Binding{}
	for _, m := range maps {
		for _, a := range m.Actions() {
			known[a.Name] = a.Binding
		}
	}
	var unknown []string
	for name, ks := range cfg {
		b, ok := known[name]
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		if len(ks) == 0 {
			b.SetEnabled(false)
			continue
		}
		b.SetKeys(ks...)
		h := b.Help()
		b.SetHelp(strings.Join(ks, "/"), h.Desc)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("tui keys: unknown action %s", strings.Join(unknown, ", "))
	}
	return nil
}

// Collision is one key bound to more than one action of a view.
type Collision struct {
	Key     string
	Actions []string
}

func (c Collision) String() string {
	return fmt.Sprintf("%q is bound to %s", c.Key, strings.Join(c.Actions, " and "))
}

// Collisions lists keys bound to more than one enabled action across the
// maps that are active together in one view.
func Collisions(maps ...Map) []Collision {
	by := map[string][]string{}
	for _, m := range maps {
		for _, a := range m.Actions() {
			if !a.Binding.Enabled() {
				continue
			}
			for _, k := range a.Binding.Keys() {
				if !slices.Contains(by[k], a.Name) {
					by[k] = append(by[k], a.Name)
				}
			}
		}
	}
	var out []Collision
	for k, names := range by {
		if len(names) > 1 {
			out = append(out, Collision{k, names})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// CheckCollisions is Collisions as an error.
func CheckCollisions(view string, maps ...Map) error {
	cs := Collisions(maps...)
	if len(cs) == 0 {
		return nil
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.String())
	}
	return fmt.Errorf("tui keys: in %s view, %s", view, strings.Join(parts, "; "))
}
