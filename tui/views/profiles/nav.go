package profiles

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/loupe-cdp/loupe/tui/common"
	"github.com/loupe-cdp/loupe/tui/components"
	"github.com/loupe-cdp/loupe/tui/keys"
	"github.com/loupe-cdp/loupe/tui/mask"
)

// moveTable applies a navigation key to a table; it reports a move.
func moveTable(t *components.Table, k tea.KeyMsg, nav *keys.Nav) bool {
	switch {
	case key.Matches(k, nav.Down):
		t.Move(1)
	case key.Matches(k, nav.Up):
		t.Move(-1)
	case key.Matches(k, nav.HalfDown):
		t.Move(t.HalfPage())
	case key.Matches(k, nav.HalfUp):
		t.Move(-t.HalfPage())
	case key.Matches(k, nav.PageDown):
		t.Move(t.Page())
	case key.Matches(k, nav.PageUp):
		t.Move(-t.Page())
	case key.Matches(k, nav.Top):
		t.SetCursor(0)
	case key.Matches(k, nav.Bottom):
		t.SetCursor(t.Len() - 1)
	default:
		return false
	}
	return true
}

// moveCursor applies a navigation key to a plain cursor over n items.
func moveCursor(c *int, n, page int, k tea.KeyMsg, nav *keys.Nav) {
	switch {
	case key.Matches(k, nav.Down):
		*c++
	case key.Matches(k, nav.Up):
		*c--
	case key.Matches(k, nav.HalfDown):
		*c += max(1, page/2)
	case key.Matches(k, nav.HalfUp):
		*c -= max(1, page/2)
	case key.Matches(k, nav.PageDown):
		*c += page
	case key.Matches(k, nav.PageUp):
		*c -= page
	case key.Matches(k, nav.Top):
		*c = 0
	case key.Matches(k, nav.Bottom):
		*c = n - 1
	}
	*c = max(0, min(*c, n-1))
}

func (m *Model) cycleFocus(d int) {
	var order []Focus
	switch {
	case m.focus == FocusJSON:
		return
	case m.detailOpen:
		first := FocusList
		if m.freqOpen {
			first = FocusFreq
		}
		order = []Focus{first, FocusTraits, FocusIdentities, FocusEvents}
	default:
		return
	}
	i := 0
	for j, f := range order {
		if f == m.focus {
			i = j
		}
	}
	m.focus = order[(i+d+len(order))%len(order)]
}

// inputKey edits the search or filter field: every key goes to it except
// enter and esc.
func (m *Model) inputKey(k tea.KeyMsg) tea.Cmd {
	switch k.Type {
	case tea.KeyEsc:
		mode := m.mode
		m.closeInput()
		if mode == inputSearch {
			m.searchReq.Cancel()
			if m.search != "" {
				m.search = ""
				return m.reload()
			}
		}
		return nil
	case tea.KeyEnter:
		if m.mode == inputSearch {
			m.closeInput()
			m.focus = FocusList
			if strings.TrimSpace(m.input.Value()) == "" {
				m.search = ""
				m.searchReq.Cancel()
				return m.reload()
			}
			return nil
		}
		m.rule = strings.TrimSpace(m.input.Value())
		m.search = ""
		m.freqOpen = false
		m.focus = FocusList
		return m.reload()
	}
	if !m.input.Update(k) || m.mode != inputSearch {
		return nil
	}
	// Search as you type: each key starts a request and cancels the last.
	prefix := strings.TrimSpace(m.input.Value())
	if prefix == "" {
		m.searchReq.Cancel()
		return nil
	}
	ctx, gen := m.searchReq.Start(m.c.Ctx)
	return search(ctx, m.c.Backend, gen, prefix)
}

func (m *Model) openFreq(trait string) tea.Cmd {
	m.freqOpen = true
	m.freqTrait = trait
	m.freq = nil
	m.freqTable.SetLen(0)
	m.detailOpen = false
	m.focus = FocusFreq
	m.layout()
	ctx, gen := m.freqReq.Start(m.c.Ctx)
	return loadFreq(ctx, m.c.Backend, gen, trait, m.rule)
}

// filterToFreqValue filters the list to the selected frequency value,
// on top of the current rule.
func (m *Model) filterToFreqValue() tea.Cmd {
	i := m.freqTable.Cursor()
	if i >= len(m.freq) {
		return nil
	}
	cond := TraitEquals(m.freqTrait, m.freq[i].Value)
	if m.rule != "" {
		cond = "(" + m.rule + ") && " + cond
	}
	m.rule = cond
	m.search = ""
	m.freqOpen = false
	m.focus = FocusList
	return tea.Batch(m.reload(), common.Status("filter: "+cond, false))
}

// TraitEquals is the rule matching profiles whose trait has the value as
// the frequency sheet shows it: numbers and booleans unquoted, "(none)"
// for a missing trait.
func TraitEquals(trait, value string) string {
	ref := "traits." + trait
	if !isIdent(trait) {
		ref = "traits[" + strconv.Quote(trait) + "]"
	}
	switch {
	case value == noneValue:
		return ref + " == nil"
	case value == "true" || value == "false":
		return ref + " == " + value
	}
	if _, err := strconv.ParseFloat(value, 64); err == nil {
		return ref + " == " + value
	}
	return ref + " == " + strconv.Quote(value)
}

// noneValue is how a frequency sheet names profiles without the trait.
const noneValue = "(none)"

func isIdent(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func (m *Model) mouse(msg tea.MouseMsg) tea.Cmd {
	if msg.Action != tea.MouseActionPress {
		return nil
	}
	d := 0
	switch msg.Button {
	case tea.MouseButtonWheelDown:
		d = 3
	case tea.MouseButtonWheelUp:
		d = -3
	default:
		return nil
	}
	switch m.focus {
	case FocusJSON:
		m.json.Scroll(d)
	case FocusFreq:
		m.freqTable.Move(d)
	case FocusEvents:
		m.eventCursor = max(0, min(len(m.events)-1, m.eventCursor+d))
	default:
		m.table.Move(d)
		return m.fetchWindow()
	}
	return nil
}

// masked says whether personal data of profile id is hidden.
func (m *Model) masked(id string) bool { return !m.revealed[id] }

// show renders a value of kind (identifier type or trait name) for id.
func (m *Model) show(id, kind, v string) string {
	if m.masked(id) {
		return mask.Value(kind, v)
	}
	return v
}

func (m *Model) refreshJSON() {
	if m.eventCursor >= len(m.events) {
		return
	}
	ev := m.events[m.eventCursor]
	txt := components.PrettyJSON(ev.Raw)
	if m.masked(ev.ProfileID) && (m.profile == nil || m.masked(m.profile.ID)) {
		txt = mask.Text(txt)
	}
	m.json.Title = fmt.Sprintf("Event %s · %s %s", ev.MessageID, ev.Type, ev.Name)
	m.json.SetText(txt)
}

// Copy implements common.View: the selected value as shown (masked unless
// revealed).
func (m *Model) Copy() (string, bool) {
	switch m.focus {
	case FocusJSON:
		return m.json.Text(), true
	case FocusTraits:
		if m.profile != nil && m.traitCursor < len(m.traitNames) {
			n := m.traitNames[m.traitCursor]
			return m.show(m.profile.ID, n, formatValue(m.profile.Traits[n].Value)), true
		}
	case FocusIdentities:
		if m.profile != nil && m.identCursor < len(m.profile.Identities) {
			id := m.profile.Identities[m.identCursor]
			return m.show(m.profile.ID, id.Type, id.Value), true
		}
	case FocusEvents:
		if m.eventCursor < len(m.events) {
			return m.events[m.eventCursor].MessageID, true
		}
	case FocusFreq:
		if i := m.freqTable.Cursor(); i < len(m.freq) {
			return m.freq[i].Value, true
		}
	case FocusList:
		if s, ok := m.summary(m.table.Cursor()); ok {
			cells := m.cells(s)
			if c := m.table.ColCursor; c >= 0 && c < len(cells) {
				return cells[c], true
			}
		}
	}
	return "", false
}

// formatValue renders a trait value compactly.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

// ShortHelp implements common.View: the bindings of the focused pane.
func (m *Model) ShortHelp() []key.Binding {
	k, n := m.Keys, m.c.Nav
	switch {
	case m.prompt.IsOpen() || m.mode != inputNone:
		return []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")),
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		}
	case m.focus == FocusJSON:
		return []key.Binding{n.Down, n.Up, n.HalfDown, m.c.Global.Copy, m.c.Global.Back}
	case m.focus == FocusFreq:
		return []key.Binding{n.Down, n.Up, withHelp(k.Open, "filter to value"), m.c.Global.Back}
	case m.focus == FocusEvents:
		return []key.Binding{n.Down, n.Up, withHelp(k.Open, "event JSON"), m.c.Global.FocusNext, k.Reveal, m.c.Global.Back}
	case m.focus == FocusTraits:
		return []key.Binding{n.Down, n.Up, k.Frequency, m.c.Global.FocusNext, k.Reveal, m.c.Global.Back}
	case m.focus == FocusIdentities:
		return []key.Binding{n.Down, n.Up, m.c.Global.FocusNext, k.Reveal, m.c.Global.Back}
	}
	return []key.Binding{n.Down, n.Up, k.Open, k.Search, k.Filter, k.Sort, n.Right, k.Frequency, k.Reveal}
}

func withHelp(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

// FullHelp implements common.View.
func (m *Model) FullHelp() [][]key.Binding {
	k, n := m.Keys, m.c.Nav
	return [][]key.Binding{
		{n.Up, n.Down, n.Top, n.Bottom, n.HalfDown, n.HalfUp, n.PageDown, n.PageUp, n.Left, n.Right},
		{k.Open, k.Search, k.Filter, k.Sort, k.Frequency, k.Reveal},
	}
}
