package tui

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/loupe-cdp/loupe/engine"
)

// updateGolden reports -update (the flag is defined by x/exp/golden,
// which teatest imports).
func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func init() { lipgloss.SetColorProfile(termenv.Ascii) }

// testNow is the fixed clock of the tests (the fixtures' evaluation time).
var testNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func fixture(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("fixture %s missing: %v", name, err)
	}
	return p
}

// openEngine opens a real engine on a temp dir and ingests the basic
// Segment fixture.
func openEngine(t testing.TB) *engine.Engine {
	t.Helper()
	dir := t.TempDir()
	e, err := engine.Open(dir, engine.Options{Now: func() time.Time { return testNow }, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if _, err := e.IngestFiles(context.Background(), []string{fixture(t, "segment-basic.ndjson")}, engine.IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// newTestApp builds the app over a real engine at w x h and runs its
// start-up commands to completion.
func newTestApp(t testing.TB, e *engine.Engine, w, h int) *App {
	t.Helper()
	c, err := NewContext(context.Background(), NewBackend(e), Options{Now: func() time.Time { return testNow }, KeyTraits: []string{"plan", "country"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewApp(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.noSpinner = true
	a.dirLabel = "/data/loupe"
	a.copy = func(s string) (string, error) { copied = s; return "test", nil }
	send(t, a, tea.WindowSizeMsg{Width: w, Height: h})
	run(t, a, a.Init())
	return a
}

var copied string

// send delivers msg and runs the resulting commands synchronously.
func send(t testing.TB, a *App, msg tea.Msg) (quit bool) {
	t.Helper()
	_, cmd := a.Update(msg)
	return run(t, a, cmd)
}

// run executes cmd (and batches) with a timeout, feeding results back,
// until nothing is left. It reports whether tea.Quit came out.
func run(t testing.TB, a *App, cmd tea.Cmd) (quit bool) {
	t.Helper()
	queue := []tea.Cmd{cmd}
	// Generous: App.Init builds the rules snapshot, ~25 s over the 1M demo
	// the benchmarks may read.
	deadline := time.Now().Add(60 * time.Second)
	for len(queue) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("commands did not settle")
		}
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		msg := c()
		switch m := msg.(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, m...)
		case tea.QuitMsg:
			quit = true
		default:
			if reflect.TypeOf(msg).String() == "tea.clearScreenMsg" || reflect.TypeOf(msg).String() == "tea.suspendMsg" {
				continue
			}
			_, next := a.Update(msg)
			queue = append(queue, next)
		}
	}
	return quit
}

// keyMsg builds a key press from its name.
func keyMsg(s string) tea.KeyMsg {
	names := map[string]tea.KeyType{
		"enter": tea.KeyEnter, "esc": tea.KeyEsc, "tab": tea.KeyTab, "shift+tab": tea.KeyShiftTab,
		"ctrl+d": tea.KeyCtrlD, "ctrl+u": tea.KeyCtrlU, "ctrl+c": tea.KeyCtrlC, "ctrl+l": tea.KeyCtrlL, "ctrl+z": tea.KeyCtrlZ,
		"up": tea.KeyUp, "down": tea.KeyDown, "pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp, "backspace": tea.KeyBackspace,
		"space": tea.KeySpace,
	}
	if k, ok := names[s]; ok {
		return tea.KeyMsg{Type: k}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

// press sends keys one by one; a string of several runes is typed.
func press(t testing.TB, a *App, keys ...string) (quit bool) {
	t.Helper()
	for _, k := range keys {
		if _, named := map[string]bool{"enter": true, "esc": true, "tab": true, "shift+tab": true, "ctrl+d": true, "ctrl+u": true, "ctrl+c": true, "ctrl+l": true, "ctrl+z": true, "up": true, "down": true, "pgdown": true, "pgup": true, "backspace": true, "space": true}[k]; named || len([]rune(k)) == 1 {
			quit = send(t, a, keyMsg(k)) || quit
			continue
		}
		for _, r := range k {
			quit = send(t, a, keyMsg(string(r))) || quit
		}
	}
	return quit
}

func screen(a *App) string { return ansi.Strip(a.View()) }

// golden compares got with testdata/name.golden; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if updateGolden() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./tui/... -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from golden (-update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// auditLog reads the engine's audit log through its AuditLog method, if
// this engine build has one.
func auditLog(t *testing.T, e *engine.Engine) []map[string]any {
	t.Helper()
	m := reflect.ValueOf(e).MethodByName("AuditLog")
	if !m.IsValid() {
		t.Skip("engine has no AuditLog yet")
	}
	out := m.Call([]reflect.Value{reflect.ValueOf(context.Background())})
	if err, _ := out[1].Interface().(error); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out[0].Interface())
	var entries []map[string]any
	json.Unmarshal(b, &entries)
	return entries
}

func contains(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("screen lacks %q:\n%s", sub, s)
	}
}

func lacks(t *testing.T, s, sub string) {
	t.Helper()
	if strings.Contains(s, sub) {
		t.Fatalf("screen has %q:\n%s", sub, s)
	}
}
