package tui

import (
	"fmt"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// Golden screens at fixed sizes, colour off, fixed clock.
func TestGoldenViews(t *testing.T) {
	e := openEngine(t)
	for _, sz := range [][2]int{{80, 24}, {120, 40}} {
		w, h := sz[0], sz[1]
		name := fmt.Sprintf("%dx%d", w, h)
		a := newTestApp(t, e, w, h)
		golden(t, "list-"+name, screen(a))
		press(t, a, "/", "user-ben", "enter", "enter")
		golden(t, "detail-"+name, screen(a))
		press(t, a, "tab", "tab", "enter")
		golden(t, "event-"+name, screen(a))
		press(t, a, "esc", "esc", "esc", "l", "l", "F")
		golden(t, "frequency-"+name, screen(a))
		press(t, a, "esc", "?")
		golden(t, "help-"+name, screen(a))
	}
}

// Every line exactly the terminal's width, exactly its height, at every
// size, on every main screen.
func TestLayoutAtManySizes(t *testing.T) {
	e := openEngine(t)
	var sizes [][2]int
	for _, w := range []int{79, 80, 81, 100, 120, 159, 160, 161, 200, 300} {
		for _, h := range []int{23, 24, 25, 30, 40, 60, 100} {
			sizes = append(sizes, [2]int{w, h})
		}
	}
	sizes = append(sizes, [2]int{20, 5}, [2]int{1, 1})
	a := newTestApp(t, e, 80, 24)
	var syncing tea.Cmd // a started sync, not yet run
	screens := []struct {
		name string
		keys []string
		do   func()
	}{
		{"list", nil, nil},
		{"search", []string{"/", "ann"}, nil},
		{"detail", []string{"enter", "enter"}, nil},
		{"events", []string{"tab", "tab"}, nil},
		{"json", []string{"enter"}, nil},
		{"reveal", []string{"R"}, nil},
		{"frequency", []string{"esc", "esc", "esc", "esc", "l", "l", "F"}, nil},
		{"filter-error", []string{"esc", "f", "traits.plan ==", "enter"}, nil},
		{"help", []string{"esc", "esc", "?"}, nil},
		{"command", []string{"esc", ":", "profile p1"}, nil},
		{"sync-missing", []string{"esc", "5"}, nil},
		{"sync", []string{"r"}, func() { writeSyncDir(t, e.Dir(), nil) }},
		{"sync-running", nil, func() { _, syncing = a.Update(keyMsg("s")) }},
		{"sync-cancelling", []string{"esc"}, nil},
		{"sync-done", []string{"S"}, func() { run(t, a, syncing) }},
		{"sync-help", []string{"?"}, nil},
	}
	for _, sc := range screens {
		if sc.do != nil {
			sc.do()
		}
		press(t, a, sc.keys...)
		for _, sz := range sizes {
			w, h := sz[0], sz[1]
			send(t, a, tea.WindowSizeMsg{Width: w, Height: h})
			out := a.View()
			lines := strings.Split(out, "\n")
			if len(lines) != h {
				t.Fatalf("%s at %dx%d: %d lines", sc.name, w, h, len(lines))
			}
			for i, l := range lines {
				if got := ansi.StringWidth(l); got != w {
					t.Fatalf("%s at %dx%d: line %d is %d wide: %q", sc.name, w, h, i, got, ansi.Strip(l))
				}
			}
			if strings.HasPrefix(sc.name, "sync") && w >= MinWidth && h >= MinHeight && !strings.Contains(ansi.Strip(out), "[5 Sync]") {
				t.Fatalf("%s at %dx%d: not on the Sync tab:\n%s", sc.name, w, h, ansi.Strip(out))
			}
			if (w < MinWidth || h < MinHeight) && w >= 40 && h >= 3 && !strings.Contains(out, "Terminal too small") {
				t.Fatalf("%s at %dx%d: no too-small message", sc.name, w, h)
			}
		}
		send(t, a, tea.WindowSizeMsg{Width: 80, Height: 24})
	}
}
