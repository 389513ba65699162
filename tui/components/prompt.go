package components

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/loupe-cdp/loupe/tui/layout"
	"github.com/loupe-cdp/loupe/tui/theme"
)

// PromptResult is sent when a prompt is answered (OK) or cancelled.
type PromptResult struct {
	ID    string // which prompt
	Value string
	OK    bool
}

// Prompt is a modal dialog asking for one line of text, such as the
// reason for revealing personal data. While open it swallows every key.
type Prompt struct {
	ID       string
	Title    string
	Message  string
	Required bool
	input    *Input
	err      string
	open     bool
}

// NewPrompt returns a closed prompt.
func NewPrompt() *Prompt {
	return &Prompt{input: &Input{Prompt: "> "}}
}

// Open shows the prompt.
func (p *Prompt) Open(id, title, message, placeholder string, required bool) tea.Cmd {
	p.ID, p.Title, p.Message, p.Required = id, title, message, required
	p.input.SetValue("")
	p.input.Placeholder = placeholder
	p.err = ""
	p.open = true
	p.input.Focus()
	return nil
}

// IsOpen reports the dialog is showing.
func (p *Prompt) IsOpen() bool { return p.open }

// Update handles keys while open: enter answers, esc cancels.
func (p *Prompt) Update(msg tea.Msg) tea.Cmd {
	if !p.open {
		return nil
	}
	if k, ok := msg.(tea.KeyMsg); ok {
		switch k.Type {
		case tea.KeyEnter:
			v := strings.TrimSpace(p.input.Value())
			if p.Required && v == "" {
				p.err = theme.GlyphErr + " a reason is required"
				return nil
			}
			p.close()
			id := p.ID
			return func() tea.Msg { return PromptResult{ID: id, Value: v, OK: true} }
		case tea.KeyEsc:
			p.close()
			id := p.ID
			return func() tea.Msg { return PromptResult{ID: id} }
		}
	}
	if p.input.Update(msg) {
		p.err = ""
	}
	return nil
}

func (p *Prompt) close() { p.open = false; p.input.Blur() }

// View renders the dialog box for a screen w cells wide.
func (p *Prompt) View(st theme.Styles, w int) string {
	bw := min(60, max(20, w-6))
	inner := bw - 4
	p.input.Width = inner - 3
	lines := []string{st.Title.Render(layout.Cell(p.Title, inner, false))}
	for _, l := range wrap(p.Message, inner) {
		lines = append(lines, layout.Cell(l, inner, false))
	}
	lines = append(lines, "", layout.FitLine(p.input.View(st), inner))
	if p.err != "" {
		lines = append(lines, st.Error.Render(layout.Cell(p.err, inner, false)))
	}
	lines = append(lines, st.Muted.Render(layout.Cell("enter confirm · esc cancel", inner, false)))
	return st.Dialog.Width(bw - 2).Render(strings.Join(lines, "\n"))
}

// wrap breaks s into lines of at most w cells at spaces.
func wrap(s string, w int) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			if line != "" && len([]rune(line))+1+len([]rune(word)) > w {
				out = append(out, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += word
		}
		out = append(out, line)
	}
	return out
}
