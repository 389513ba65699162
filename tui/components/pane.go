package components

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/loupe-cdp/loupe/tui/layout"
	"github.com/loupe-cdp/loupe/tui/theme"
)

// TextPane is a scrollable block of lines (an event's JSON, the full
// help). Lines are kept unwrapped; long lines are cut at the width.
type TextPane struct {
	Title  string
	lines  []string
	offset int
	w, h   int
}

// SetText replaces the content and scrolls to the top.
func (p *TextPane) SetText(s string) {
	p.lines = strings.Split(strings.TrimRight(s, "\n"), "\n")
	p.offset = 0
}

// Text is the content.
func (p *TextPane) Text() string { return strings.Join(p.lines, "\n") }

// SetSize sets the outer size (the title line included).
func (p *TextPane) SetSize(w, h int) { p.w, p.h = w, h; p.Scroll(0) }

func (p *TextPane) body() int { return max(1, p.h-1) }

// Scroll moves the view by delta lines.
func (p *TextPane) Scroll(delta int) {
	p.offset = max(0, min(p.offset+delta, len(p.lines)-p.body()))
}

// Top and Bottom jump to the ends.
func (p *TextPane) Top()    { p.offset = 0 }
func (p *TextPane) Bottom() { p.Scroll(len(p.lines)) }

// Page is the number of body lines.
func (p *TextPane) Page() int { return p.body() }

// View renders the title line and the visible lines with a scrollbar.
func (p *TextPane) View(st theme.Styles) string {
	if p.w <= 0 || p.h <= 0 {
		return ""
	}
	bh := p.h - 1
	end := min(len(p.lines), p.offset+bh)
	pos := layout.Thousands(min(len(p.lines), p.offset+1)) + "–" + layout.Thousands(end) + " of " + layout.Thousands(len(p.lines)) + " lines"
	title := st.PaneTitle.Render(p.Title)
	gap := p.w - len([]rune(p.Title)) - len([]rune(pos)) - 1
	head := title
	if gap > 0 {
		head += strings.Repeat(" ", gap) + st.Muted.Render(pos)
	}
	out := []string{layout.FitLine(head, p.w)}
	bar := Scrollbar(bh, len(p.lines), p.offset)
	for y := 0; y < bh; y++ {
		l := ""
		if i := p.offset + y; i < len(p.lines) {
			l = p.lines[i]
		}
		out = append(out, layout.FitLine(l, p.w-1)+st.Muted.Render(bar[y]))
	}
	return strings.Join(out, "\n")
}

// PrettyJSON indents raw JSON for the JSON pane; invalid JSON is returned
// as is.
func PrettyJSON(raw []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}
