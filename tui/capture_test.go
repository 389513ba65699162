package tui

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/charmbracelet/bubbles/key"

	"github.com/loupe-cdp/loupe/tui/keys"
	"github.com/loupe-cdp/loupe/tui/views/profiles"
	syncview "github.com/loupe-cdp/loupe/tui/views/sync"
)

// TestREADMECapture writes README-capture.txt (screens at 100x30 and the
// key table) when run with -update.
func TestREADMECapture(t *testing.T) {
	if !updateGolden() {
		t.Skip("run with -update to rewrite README-capture.txt")
	}
	a := newTestApp(t, openEngine(t), 100, 30)
	var b strings.Builder
	shot := func(title string) {
		fmt.Fprintf(&b, "### %s\n\n```\n%s\n```\n\n", title, screen(a))
	}
	shot("Profile list")
	press(t, a, "/", "user-ben", "enter", "enter")
	shot("Profile detail (search user-ben, enter)")
	press(t, a, "tab", "tab", "enter")
	shot("Event JSON (tab to Events, enter)")
	press(t, a, "esc", "esc", "esc", "l", "l", "F")
	shot("Frequency of a trait column (l l F)")
	press(t, a, "esc", "?")
	shot("Help (?)")
	writeSyncDir(t, a.c.Backend.Dir(), nil)
	press(t, a, "esc", "5", "r", "S")
	shot("Sync (5, S syncs every source of sources.yaml)")
	b.WriteString("### Keys\n\n| key | action | config name |\n|---|---|---|\n")
	row := func(name string, k *key.Binding) {
		if k.Help().Key != "" {
			fmt.Fprintf(&b, "| `%s` | %s | `%s` |\n", strings.Join(k.Keys(), "`, `"), k.Help().Desc, name)
		}
	}
	for _, m := range []keys.Map{keys.DefaultNav(), profiles.DefaultKeyMap(), syncview.DefaultKeyMap(), keys.DefaultGlobal()} {
		for _, ac := range m.Actions() {
			row(ac.Name, ac.Binding)
		}
	}
	b.WriteString("\nCommands (`:`): ")
	for i, c := range Commands {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "`:%s` (%s)", c[0], c[1])
	}
	b.WriteString("\n\nRebind in loupe.yaml: `tui: {keys: {search: [\"/\", \"ctrl+f\"]}}`; two actions of one view on one key is an error at start.\n")
	if err := os.WriteFile("README-capture.txt", []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
