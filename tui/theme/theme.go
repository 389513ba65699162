// Package theme holds the workbench's colours and glyphs in one place.
//
// Colours are semantic tokens mapped to adaptive ANSI colours, so one theme
// serves light and dark terminals. NO_COLOR (and --no-color) work through
// lipgloss/termenv: with the Ascii profile every colour renders as nothing,
// which is why state is always carried by a glyph or reverse video as well.
package theme

import (
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Glyphs carry state without colour.
const (
	GlyphOK       = "✓"
	GlyphErr      = "✗"
	GlyphInfo     = "●"
	GlyphBusy     = "↺"
	GlyphCursor   = "▶"
	GlyphMasked   = "•"
	GlyphRevealed = "◉"
	GlyphSortDesc = "▼"
	GlyphThumb    = "█"
	GlyphTrack    = "│"
	GlyphBar      = "█"
	GlyphEllipsis = "…"
)

// Palette is the adaptive colour set.
var (
	Fg        = lipgloss.AdaptiveColor{Light: "0", Dark: "15"}
	Muted     = lipgloss.AdaptiveColor{Light: "8", Dark: "7"}
	Accent    = lipgloss.AdaptiveColor{Light: "4", Dark: "12"}
	Good      = lipgloss.AdaptiveColor{Light: "2", Dark: "10"}
	Bad       = lipgloss.AdaptiveColor{Light: "1", Dark: "9"}
	Warn      = lipgloss.AdaptiveColor{Light: "3", Dark: "11"}
	Highlight = lipgloss.AdaptiveColor{Light: "7", Dark: "8"}
)

// Styles are the rendered styles every view uses.
type Styles struct {
	App         lipgloss.Style
	Title       lipgloss.Style
	TabActive   lipgloss.Style
	TabInactive lipgloss.Style
	Header      lipgloss.Style
	HeaderInfo  lipgloss.Style
	Status      lipgloss.Style
	StatusErr   lipgloss.Style
	StatusOK    lipgloss.Style
	Footer      lipgloss.Style
	ColHeader   lipgloss.Style
	ColActive   lipgloss.Style
	Cursor      lipgloss.Style // reverse video: visible without colour
	Muted       lipgloss.Style
	Accent      lipgloss.Style
	Error       lipgloss.Style
	OK          lipgloss.Style
	Masked      lipgloss.Style
	PaneTitle   lipgloss.Style
	PaneFocused lipgloss.Style
	Dialog      lipgloss.Style
	Bar         lipgloss.Style
	Key         lipgloss.Style
	Desc        lipgloss.Style
}

// New builds the styles.
func New() Styles {
	s := Styles{}
	s.Title = lipgloss.NewStyle().Bold(true).Foreground(Accent)
	s.TabActive = lipgloss.NewStyle().Bold(true).Reverse(true)
	s.TabInactive = lipgloss.NewStyle().Foreground(Muted)
	s.Header = lipgloss.NewStyle()
	s.HeaderInfo = lipgloss.NewStyle().Foreground(Muted)
	s.Status = lipgloss.NewStyle().Foreground(Muted)
	s.StatusErr = lipgloss.NewStyle().Foreground(Bad).Bold(true)
	s.StatusOK = lipgloss.NewStyle().Foreground(Good)
	s.Footer = lipgloss.NewStyle().Foreground(Muted)
	s.ColHeader = lipgloss.NewStyle().Bold(true).Underline(true)
	s.ColActive = lipgloss.NewStyle().Bold(true).Underline(true).Foreground(Accent)
	s.Cursor = lipgloss.NewStyle().Reverse(true)
	s.Muted = lipgloss.NewStyle().Foreground(Muted)
	s.Accent = lipgloss.NewStyle().Foreground(Accent)
	s.Error = lipgloss.NewStyle().Foreground(Bad)
	s.OK = lipgloss.NewStyle().Foreground(Good)
	s.Masked = lipgloss.NewStyle().Foreground(Muted)
	s.PaneTitle = lipgloss.NewStyle().Bold(true)
	s.PaneFocused = lipgloss.NewStyle().Bold(true).Reverse(true)
	s.Dialog = lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(Accent).Padding(0, 1)
	s.Bar = lipgloss.NewStyle().Foreground(Accent)
	s.Key = lipgloss.NewStyle().Bold(true)
	s.Desc = lipgloss.NewStyle().Foreground(Muted)
	return s
}

// SetNoColor turns colour off for the whole process, as NO_COLOR does.
func SetNoColor(off bool) {
	if off {
		lipgloss.SetColorProfile(termenv.Ascii)
	}
}
