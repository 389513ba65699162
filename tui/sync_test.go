package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/loupe-cdp/loupe/engine"
)

// syncSources declares a file source over exports/*.ndjson and an HTTP
// source whose token variable is unset, so it fails before any request:
// no network and no PostgreSQL are needed.
const syncSources = `sources:
  - name: exports
    kind: file
    interval: 5m
    file:
      path: exports/*.ndjson
  - name: events_api
    kind: http
    interval: 30s
    http:
      url: https://events.invalid/v1/export
      headers:
        Authorization: Bearer ${LOUPE_TUI_TEST_UNSET_TOKEN}
`

// openSyncEngine opens a real, empty engine whose data dir holds
// sources.yaml and, under exports/, a copy of the basic Segment fixture
// (or the file data when it is not nil).
func openSyncEngine(t testing.TB, data []byte) *engine.Engine {
	t.Helper()
	if os.Getenv("LOUPE_TUI_TEST_UNSET_TOKEN") != "" {
		t.Skip("LOUPE_TUI_TEST_UNSET_TOKEN is set")
	}
	e, err := engine.Open(t.TempDir(), engine.Options{Now: func() time.Time { return testNow }, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	writeSyncDir(t, e.Dir(), data)
	return e
}

func writeSyncDir(t testing.TB, dir string, data []byte) {
	t.Helper()
	if data == nil {
		var err error
		data, err = os.ReadFile(fixture(t, "segment-basic.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "exports"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "exports", "segment-basic.ndjson"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sources.yaml"), []byte(syncSources), 0o644); err != nil {
		t.Fatal(err)
	}
}

func events(t testing.TB, e *engine.Engine) int64 {
	t.Helper()
	st, err := e.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int64(st.Events)
}

func msgType(m tea.Msg) string { return reflect.TypeOf(m).String() }

// runAsync drives cmd the way a bubbletea program does: every command in
// its own goroutine, every message back through Update on this goroutine,
// until no command is left. onMsg sees each message after Update.
func runAsync(t *testing.T, a *App, cmd tea.Cmd, onMsg func(tea.Msg)) {
	t.Helper()
	msgs := make(chan tea.Msg)
	pending := 0
	var launch func(tea.Cmd)
	launch = func(c tea.Cmd) {
		if c == nil {
			return
		}
		pending++
		go func() { msgs <- c() }()
	}
	launch(cmd)
	timeout := time.After(60 * time.Second)
	for pending > 0 {
		select {
		case <-timeout:
			t.Fatal("commands did not settle")
		case msg := <-msgs:
			pending--
			switch m := msg.(type) {
			case nil, tea.QuitMsg:
			case tea.BatchMsg:
				for _, c := range m {
					launch(c)
				}
			default:
				_, next := a.Update(msg)
				launch(next)
				if onMsg != nil {
					onMsg(msg)
				}
			}
		}
	}
}

func TestSyncStatusLoads(t *testing.T) {
	a := newTestApp(t, openSyncEngine(t, nil), 120, 40)
	press(t, a, "5")
	if a.Active() != 4 {
		t.Fatalf("tab %d", a.Active())
	}
	src := a.Sync.Sources()
	if len(src) != 2 || src[0].Name != "exports" || src[0].Kind != "file" || src[1].Kind != "http" {
		t.Fatalf("sources %+v", src)
	}
	s := screen(a)
	contains(t, s, "[5 Sync]")
	contains(t, s, "2 sources")
	contains(t, s, "exports")
	contains(t, s, "events_api")
	contains(t, s, "never")
	contains(t, s, "No sync in this session")
	contains(t, s, "enter/s sync source")
}

// Start a sync of the selected source, drive it to completion: the panel
// and the table show what the engine ingested.
func TestSyncRunsToCompletion(t *testing.T) {
	e := openSyncEngine(t, nil)
	a := newTestApp(t, e, 120, 40)
	press(t, a, "5", "enter")
	if a.Sync.Running() {
		t.Fatal("still running")
	}
	if got := events(t, e); got != 31 {
		t.Fatalf("engine has %d events, want 31", got)
	}
	res := a.Sync.Results()["exports"]
	if res.Ingested != 31 || res.Fetched != 31 || res.Error != nil {
		t.Fatalf("result %+v", res)
	}
	s := screen(a)
	contains(t, s, "✓ Synced exports")
	contains(t, s, "fetched 31 · ingested 31 · duplicates 0 · quarantined 0 · pages ")
	contains(t, s, "1/1 sources")
	// The status table reloaded: rows, last run, cursor.
	if st := a.Sync.Sources()[0]; st.Rows != 31 || st.LastRun.IsZero() || st.Cursor != "1 files" {
		t.Fatalf("status %+v", st)
	}
	row := lineWith(s, "▶✓ exports")
	for _, cell := range []string{" file ", " 5m ", " now ", " 31 ", " - ", " 1 files "} {
		contains(t, row, cell)
	}
	// The header counts and the profile list followed the ingest.
	contains(t, s, "31 events")
	if n := a.Profiles.Len(); n != 6 {
		t.Fatalf("profile list has %d rows after the sync, want 6", n)
	}
	if msg, isErr := a.Status(); isErr || !strings.Contains(msg, "synced exports: 31 ingested") {
		t.Fatalf("status %q %v", msg, isErr)
	}
	// Sync all: the file is done (nothing new), the HTTP source fails
	// with its error in the table and the panel.
	press(t, a, "S")
	if got := events(t, e); got != 31 {
		t.Fatalf("engine has %d events after a second run", got)
	}
	s = screen(a)
	contains(t, s, "✗ Synced exports, events_api")
	contains(t, s, "1 of 2 failed")
	contains(t, lineWith(s, "events_api  "), "✗ events_api")
	contains(t, lineWith(s, "events_api  "), "✗ source events_api: env")
	if msg, isErr := a.Status(); !isErr || !strings.Contains(msg, "events_api") {
		t.Fatalf("status %q %v", msg, isErr)
	}
	press(t, a, "j")
	contains(t, screen(a), "events_api · cursor - · ✗ source events_api: environment variable LOUPE_TUI_TEST_UNSET_TOKEN is not set")
	press(t, a, "y")
	if !strings.Contains(copied, "LOUPE_TUI_TEST_UNSET_TOKEN is not set") {
		t.Fatalf("copied %q", copied)
	}
}

// A second start while one runs is refused, and only one run happens.
func TestSyncSecondStartRefused(t *testing.T) {
	e := openSyncEngine(t, nil)
	a := newTestApp(t, e, 120, 40)
	press(t, a, "5")
	_, first := a.Update(keyMsg("s"))
	if !a.Sync.Running() {
		t.Fatal("not running")
	}
	s := screen(a)
	contains(t, s, "● Syncing exports (1 of 1)")
	contains(t, s, "esc cancel sync")
	for _, k := range []string{"s", "enter", "S"} {
		send(t, a, keyMsg(k))
		msg, isErr := a.Status()
		if !isErr || !strings.Contains(msg, "refused: the sync of exports is still running") {
			t.Fatalf("%s: status %q %v", k, msg, isErr)
		}
	}
	run(t, a, first)
	if a.Sync.Running() {
		t.Fatal("still running")
	}
	if got := events(t, e); got != 31 {
		t.Fatalf("%d events", got)
	}
	if r := a.Sync.Results(); len(r) != 1 || r["exports"].Ingested != 31 {
		t.Fatalf("results %+v", r)
	}
}

// esc cancels a run through its context: nothing half-written, and the
// next run takes everything.
func TestSyncEscCancels(t *testing.T) {
	e := openSyncEngine(t, nil)
	a := newTestApp(t, e, 120, 40)
	press(t, a, "5")
	_, cmd := a.Update(keyMsg("enter"))
	press(t, a, "esc")
	if msg, _ := a.Status(); !strings.Contains(msg, "cancelling") {
		t.Fatalf("status %q", msg)
	}
	run(t, a, cmd)
	if a.Sync.Running() {
		t.Fatal("still running")
	}
	// Cancelled before the runner reached the source: no result, no
	// events, no status record.
	if r := a.Sync.Results(); len(r) != 0 {
		t.Fatalf("results %+v", r)
	}
	if got := events(t, e); got != 0 {
		t.Fatalf("engine has %d events", got)
	}
	if st := a.Sync.Sources()[0]; !st.LastRun.IsZero() {
		t.Fatalf("status %+v", st)
	}
	contains(t, screen(a), "✗ Cancelled")
	if msg, isErr := a.Status(); isErr || !strings.Contains(msg, "sync cancelled") {
		t.Fatalf("status %q", msg)
	}
	// esc with nothing running is plain back: no status.
	press(t, a, "esc", "enter")
	if got := events(t, e); got != 31 {
		t.Fatalf("after resuming: %d events, want 31", got)
	}
}

// esc in the middle of a multi-page file, with the run going on in the
// background as in the real program: the pages committed before the
// cancel stay, the rest comes with the next run, nothing twice.
func TestSyncEscCancelsMidRun(t *testing.T) {
	const n = 12000 // six pages of 2,000
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"track","messageId":"m-%d","userId":"u-%d","event":"Viewed","timestamp":"2026-10-01T00:00:00Z"}`+"\n", i, i%300)
	}
	e := openSyncEngine(t, []byte(b.String()))
	a := newTestApp(t, e, 120, 40)
	press(t, a, "5")
	_, cmd := a.Update(keyMsg("s"))
	// Cancel once a page is committed (the panel shows page 2 or later).
	var cancelled bool
	runAsync(t, a, cmd, func(m tea.Msg) {
		if msgType(m) != "sync.progressMsg" || cancelled {
			return
		}
		s := screen(a)
		if strings.Contains(s, "● Syncing exports") && !strings.Contains(s, "· page 1 ·") {
			cancelled = true
			if _, c := a.Update(keyMsg("esc")); c == nil {
				t.Error("esc returned nothing")
			}
		}
	})
	res := a.Sync.Results()["exports"]
	got := events(t, e)
	if got != res.Ingested {
		t.Fatalf("engine has %d events, the run reported %d", got, res.Ingested)
	}
	if !cancelled || res.Error == nil {
		t.Logf("the run finished before the cancel landed (%d events)", got)
	} else {
		contains(t, screen(a), "✗ Cancelled")
		if got == 0 || got >= n || got%2000 != 0 {
			t.Fatalf("cancelled with %d events committed: want whole pages", got)
		}
		t.Logf("cancelled after %d of %d events", got, n)
	}
	_, cmd = a.Update(keyMsg("s"))
	runAsync(t, a, cmd, nil)
	if got := events(t, e); got != n {
		t.Fatalf("after resuming: %d events, want %d", got, n)
	}
	// A cancelled run records the pages it committed, so ROWS adds up.
	if rows := a.Sync.Sources()[0].Rows; rows != int64(n) {
		t.Fatalf("ROWS shows %d, the engine holds %d events", rows, n)
	}
	if res := a.Sync.Results()["exports"]; res.Duplicates != 0 || res.Error != nil {
		t.Fatalf("resumed run %+v", res)
	}
}

// Leaving the workbench mid-sync: Wait cancels the run and returns once
// the runner has, so the caller can close the engine; only whole pages
// were committed.
func TestSyncWaitAfterQuit(t *testing.T) {
	var b strings.Builder
	for i := range 12000 {
		fmt.Fprintf(&b, `{"type":"track","messageId":"m-%d","userId":"u-%d","event":"Viewed","timestamp":"2026-10-01T00:00:00Z"}`+"\n", i, i%300)
	}
	e := openSyncEngine(t, []byte(b.String()))
	a := newTestApp(t, e, 120, 40)
	press(t, a, "5")
	_, cmd := a.Update(keyMsg("s"))
	// As the program would: the run's commands on their own goroutines;
	// then the program ends without delivering their messages.
	for _, c := range cmd().(tea.BatchMsg) {
		go func() { _ = c() }()
	}
	time.Sleep(20 * time.Millisecond)
	if !a.Sync.Wait(30 * time.Second) {
		t.Fatal("the runner did not return")
	}
	if got := events(t, e); got%2000 != 0 {
		t.Fatalf("%d events committed: want whole pages", got)
	}
}

func TestSyncMissingSourcesShowsHowTo(t *testing.T) {
	a := newTestApp(t, openEngine(t), 80, 24)
	press(t, a, "5")
	s := screen(a)
	contains(t, s, "No sources.yaml in the data dir")
	contains(t, s, "kind: file")
	contains(t, s, "see README: Sync")
	press(t, a, "s")
	if msg, isErr := a.Status(); !isErr || !strings.Contains(msg, "nothing to sync") {
		t.Fatalf("status %q", msg)
	}
	// Creating sources.yaml and pressing r shows the table.
	writeSyncDir(t, a.c.Backend.Dir(), nil)
	press(t, a, "r")
	contains(t, screen(a), "events_api")
}

// lineWith is the first line of s containing sub.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// Golden Sync screens at 80x24 and 120x40: no sources.yaml, the status
// before any run, a run in progress, and after syncing everything (one
// source ok, one failing).
func TestSyncGoldenViews(t *testing.T) {
	for _, sz := range [][2]int{{80, 24}, {120, 40}} {
		w, h := sz[0], sz[1]
		name := fmt.Sprintf("%dx%d", w, h)
		e := openSyncEngine(t, nil)
		if err := os.Remove(filepath.Join(e.Dir(), "sources.yaml")); err != nil {
			t.Fatal(err)
		}
		a := newTestApp(t, e, w, h)
		press(t, a, "5")
		golden(t, "sync-missing-"+name, screen(a))
		writeSyncDir(t, e.Dir(), nil)
		press(t, a, "r")
		golden(t, "sync-status-"+name, screen(a))
		_, cmd := a.Update(keyMsg("s"))
		golden(t, "sync-running-"+name, screen(a))
		run(t, a, cmd)
		press(t, a, "S", "j")
		golden(t, "sync-done-"+name, screen(a))
	}
}
