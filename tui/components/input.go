package components

import (
	"strings"
	"unicode"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/loupe-cdp/loupe/tui/theme"
)

// Input is a one-line text field. (bubbles/textinput pulls in a clipboard
// module this repository does not carry; this covers what the workbench
// needs: typing, paste, cursor movement and deletion.) While focused it
// takes every printable key, so typing "q" types a q.
type Input struct {
	Prompt      string
	Placeholder string
	Width       int
	value       []rune
	pos         int
	focused     bool
}

// Focus gives the field the keyboard.
func (in *Input) Focus() { in.focused = true }

// Blur takes it away.
func (in *Input) Blur() { in.focused = false }

// Focused reports focus.
func (in *Input) Focused() bool { return in.focused }

// Value is the text.
func (in *Input) Value() string { return string(in.value) }

// SetValue replaces the text and puts the cursor at its end.
func (in *Input) SetValue(s string) { in.value = []rune(s); in.pos = len(in.value) }

// Update edits the text for one key. It reports whether the text changed.
func (in *Input) Update(msg tea.Msg) bool {
	k, ok := msg.(tea.KeyMsg)
	if !ok || !in.focused {
		return false
	}
	switch k.Type {
	case tea.KeyRunes, tea.KeySpace:
		r := k.Runes
		if k.Type == tea.KeySpace {
			r = []rune{' '}
		}
		var clean []rune
		for _, c := range r {
			if unicode.IsPrint(c) {
				clean = append(clean, c)
			}
		}
		in.value = append(in.value[:in.pos], append(clean, in.value[in.pos:]...)...)
		in.pos += len(clean)
		return len(clean) > 0
	case tea.KeyBackspace:
		if in.pos > 0 {
			in.value = append(in.value[:in.pos-1], in.value[in.pos:]...)
			in.pos--
			return true
		}
	case tea.KeyDelete:
		if in.pos < len(in.value) {
			in.value = append(in.value[:in.pos], in.value[in.pos+1:]...)
			return true
		}
	case tea.KeyLeft:
		in.pos = max(0, in.pos-1)
	case tea.KeyRight:
		in.pos = min(len(in.value), in.pos+1)
	case tea.KeyHome, tea.KeyCtrlA:
		in.pos = 0
	case tea.KeyEnd, tea.KeyCtrlE:
		in.pos = len(in.value)
	case tea.KeyCtrlU:
		changed := in.pos > 0
		in.value = in.value[in.pos:]
		in.pos = 0
		return changed
	case tea.KeyCtrlW:
		i := in.pos
		for i > 0 && in.value[i-1] == ' ' {
			i--
		}
		for i > 0 && in.value[i-1] != ' ' {
			i--
		}
		changed := i != in.pos
		in.value = append(in.value[:i], in.value[in.pos:]...)
		in.pos = i
		return changed
	}
	return false
}

// View renders the prompt, the text and, when focused, a block cursor
// (reverse video, or an underscore glyph where there is no colour).
func (in *Input) View(st theme.Styles) string {
	var b strings.Builder
	b.WriteString(in.Prompt)
	if len(in.value) == 0 && !in.focused {
		b.WriteString(st.Muted.Render(in.Placeholder))
		return b.String()
	}
	if len(in.value) == 0 && in.Placeholder != "" {
		b.WriteString(st.Cursor.Render("_"))
		b.WriteString(st.Muted.Render(in.Placeholder))
		return b.String()
	}
	v := in.value
	start := 0
	if w := in.Width - ansi.StringWidth(in.Prompt) - 1; w > 0 && in.pos > w {
		start = in.pos - w
	}
	b.WriteString(string(v[start:in.pos]))
	if in.focused {
		c := "_"
		if in.pos < len(v) {
			c = string(v[in.pos])
		}
		b.WriteString(st.Cursor.Render(c))
		if in.pos < len(v) {
			b.WriteString(string(v[in.pos+1:]))
		}
	} else {
		b.WriteString(string(v[in.pos:]))
	}
	return b.String()
}
