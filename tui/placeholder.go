package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/loupe-cdp/loupe/tui/layout"
)

// placeholder is a tab whose view arrives with a later issue.
type placeholder struct {
	title, note string
	w, h        int
}

func (p *placeholder) Init() tea.Cmd             { return nil }
func (p *placeholder) Update(tea.Msg) tea.Cmd    { return nil }
func (p *placeholder) SetSize(w, h int)          { p.w, p.h = w, h }
func (p *placeholder) Title() string             { return p.title }
func (p *placeholder) Capturing() bool           { return false }
func (p *placeholder) Back() (tea.Cmd, bool)     { return nil, false }
func (p *placeholder) Loading() bool             { return false }
func (p *placeholder) Copy() (string, bool)      { return "", false }
func (p *placeholder) ShortHelp() []key.Binding  { return nil }
func (p *placeholder) FullHelp() [][]key.Binding { return nil }
func (p *placeholder) View() string {
	return layout.Fit("\n  "+p.title+"\n\n  "+p.note, p.w, p.h)
}
