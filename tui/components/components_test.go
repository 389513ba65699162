package components

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/loupe-cdp/loupe/tui/theme"
)

func init() { lipgloss.SetColorProfile(termenv.Ascii) }

func cols() []Column {
	return []Column{{Title: "ID", Width: 9}, {Title: "EMAIL", Width: 10, Flex: 2}, {Title: "EVENTS", Width: 6, Right: true}}
}

func TestTableRendersOnlyVisibleRows(t *testing.T) {
	tb := NewTable(cols())
	tb.SetSize(80, 11)
	tb.SetLen(1_000_000)
	calls := map[int]bool{}
	row := func(i int) ([]string, bool) {
		calls[i] = true
		return []string{"p" + strconv.Itoa(i), "x", strconv.Itoa(i)}, true
	}
	tb.SetCursor(500_000)
	out := tb.View(row, theme.New())
	if len(calls) != 10 {
		t.Fatalf("row asked %d times, want 10", len(calls))
	}
	for i := range calls {
		if i < 499_991 || i > 500_000 {
			t.Fatalf("asked for row %d outside the viewport", i)
		}
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 11 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		if ansi.StringWidth(l) != 80 {
			t.Fatalf("width %d: %q", ansi.StringWidth(l), l)
		}
	}
	if !strings.HasPrefix(lines[10], theme.GlyphCursor+"p500000") {
		t.Fatalf("cursor row %q", lines[10])
	}
	if got := tb.RangeText(); got != "499,992–500,001 of 1,000,000" {
		t.Fatalf("range %q", got)
	}
	from, to := tb.Window()
	if from != 499_981 || to != 500_011 {
		t.Fatalf("window %d-%d", from, to)
	}
	// Cached: a second frame asks for nothing.
	clear(calls)
	tb.View(row, theme.New())
	if len(calls) != 0 {
		t.Fatalf("cached frame asked for %d rows", len(calls))
	}
}

func TestTableNavigationClamps(t *testing.T) {
	tb := NewTable(cols())
	tb.SetSize(40, 6)
	tb.SetLen(12)
	tb.Move(-3)
	if tb.Cursor() != 0 {
		t.Fatal(tb.Cursor())
	}
	tb.Move(100)
	if tb.Cursor() != 11 {
		t.Fatal(tb.Cursor())
	}
	if f, to := tb.Visible(); f != 7 || to != 12 {
		t.Fatalf("visible %d-%d", f, to)
	}
	tb.SetLen(3)
	if tb.Cursor() != 2 {
		t.Fatal(tb.Cursor())
	}
	tb.SetLen(0)
	if tb.RangeText() != "0 of 0" {
		t.Fatal(tb.RangeText())
	}
}

func TestScrollbar(t *testing.T) {
	got := strings.Join(Scrollbar(5, 100, 95), "")
	if got != "││││█" {
		t.Fatalf("%q", got)
	}
	got = strings.Join(Scrollbar(5, 100, 0), "")
	if got != "█││││" {
		t.Fatalf("%q", got)
	}
	if strings.Join(Scrollbar(3, 2, 0), "") != "   " {
		t.Fatal("no bar when everything fits")
	}
}

func key(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

func TestPromptRequiresReason(t *testing.T) {
	p := NewPrompt()
	p.Open("reveal", "Reveal", "Why?", "reason", true)
	if cmd := p.Update(key("enter")); cmd != nil || !p.IsOpen() {
		t.Fatal("empty reason accepted")
	}
	if !strings.Contains(ansi.Strip(p.View(theme.New(), 80)), "required") {
		t.Fatal("no error shown")
	}
	for _, r := range "qa ticket 42" {
		p.Update(key(string(r)))
	}
	res := p.Update(key("enter"))().(PromptResult)
	if !res.OK || res.Value != "qa ticket 42" || res.ID != "reveal" || p.IsOpen() {
		t.Fatalf("%+v", res)
	}
	p.Open("reveal", "Reveal", "Why?", "", true)
	res = p.Update(key("esc"))().(PromptResult)
	if res.OK {
		t.Fatal("esc confirmed")
	}
}

func TestInputEditing(t *testing.T) {
	in := &Input{}
	in.Focus()
	for _, s := range []string{"q", "u", "i", "t"} {
		in.Update(key(s))
	}
	in.Update(key("backspace"))
	in.Update(tea.KeyMsg{Type: tea.KeyLeft})
	in.Update(key("x"))
	if in.Value() != "quxi" {
		t.Fatal(in.Value())
	}
	in.Update(tea.KeyMsg{Type: tea.KeyCtrlW})
	if in.Value() != "i" {
		t.Fatal(in.Value())
	}
}

func TestTextPane(t *testing.T) {
	var p TextPane
	p.Title = "event"
	p.SetText(PrettyJSON([]byte(`{"a":1,"b":{"c":[1,2,3]}}`)))
	p.SetSize(30, 5)
	p.Scroll(100)
	out := p.View(theme.New())
	lines := strings.Split(out, "\n")
	if len(lines) != 5 {
		t.Fatal(len(lines))
	}
	for _, l := range lines {
		if ansi.StringWidth(l) != 30 {
			t.Fatalf("%q", l)
		}
	}
	if !strings.Contains(lines[0], "7–10 of 10 lines") {
		t.Fatalf("%q", lines[0])
	}
}

// BenchmarkTableView is one frame of a 40-row table while scrolling, over
// sources of growing size: the cost must not grow with N.
func BenchmarkTableView(b *testing.B) {
	st := theme.New()
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			tb := NewTable(cols())
			tb.SetSize(120, 41)
			tb.SetLen(n)
			row := func(i int) ([]string, bool) {
				return []string{"p" + strconv.Itoa(i), "user" + strconv.Itoa(i) + "@example.com", strconv.Itoa(i % 97)}, true
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				tb.Move(1 + i%7)
				_ = tb.View(row, st)
			}
		})
	}
}
