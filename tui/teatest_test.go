package tui

import (
	"bytes"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"
)

func typeKeys(tm *teatest.TestModel, keys ...string) {
	for _, k := range keys {
		if len([]rune(k)) > 1 && keyMsg(k).Type == tea.KeyRunes {
			tm.Type(k)
			continue
		}
		tm.Send(keyMsg(k))
	}
}

func waitScreen(t *testing.T, tm *teatest.TestModel, sub string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return bytes.Contains(b, []byte(sub))
	}, teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
}

// Open, search, open the detail, go back, quit: end to end through a
// real bubbletea program over a real store.
func TestFlowSearchDetailBackQuit(t *testing.T) {
	a := newTestApp(t, openEngine(t), 100, 30)
	a.noSpinner = false
	tm := teatest.NewTestModel(t, a, teatest.WithInitialTermSize(100, 30))
	waitScreen(t, tm, "p1")
	typeKeys(tm, "/", "user-ben", "enter")
	waitScreen(t, tm, "(1 of 6)")
	typeKeys(tm, "enter")
	waitScreen(t, tm, "Provenance")
	typeKeys(tm, "esc")
	typeKeys(tm, "q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*App)
	s := ansi.Strip(fm.View())
	if strings.Contains(s, "Provenance") || !strings.Contains(s, `search: "user-ben"`) {
		t.Fatalf("final screen:\n%s", s)
	}
	golden(t, "flow-final-100x30", s)
}

// The search box swallows q; ctrl+c still quits.
func TestFlowQInSearchThenCtrlC(t *testing.T) {
	a := newTestApp(t, openEngine(t), 100, 30)
	tm := teatest.NewTestModel(t, a, teatest.WithInitialTermSize(100, 30))
	waitScreen(t, tm, "p1")
	typeKeys(tm, "/", "q")
	waitScreen(t, tm, "/ q")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// The Sync tab end to end: the run's progress comes back through the
// program's own command loop (no p.Send), the table reloads, q quits.
func TestFlowSync(t *testing.T) {
	e := openSyncEngine(t, nil)
	a := newTestApp(t, e, 100, 30)
	tm := teatest.NewTestModel(t, a, teatest.WithInitialTermSize(100, 30))
	waitScreen(t, tm, "0 profiles")
	typeKeys(tm, "5")
	waitScreen(t, tm, "events_api")
	typeKeys(tm, "enter")
	waitScreen(t, tm, "Synced exports")
	typeKeys(tm, "q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*App)
	s := ansi.Strip(fm.View())
	if !strings.Contains(s, "ingested 31") || fm.Sync.Running() {
		t.Fatalf("final screen:\n%s", s)
	}
}
