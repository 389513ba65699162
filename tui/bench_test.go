package tui

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/tui/keys"
	"github.com/loupe-cdp/loupe/tui/views/profiles"
	syncview "github.com/loupe-cdp/loupe/tui/views/sync"
)

// seqIndex is an n-row list of profile ids p1..pn, 8 bytes a row like the
// engine's index, without building a store of n profiles.
type seqIndex struct{ n int }

func (s seqIndex) Len() int   { return s.n }
func (s seqIndex) Total() int { return s.n }
func (s seqIndex) IDs(off, n int) []string {
	var out []string
	for i := off; i < min(s.n, off+n); i++ {
		out = append(out, "p"+strconv.Itoa(i+1))
	}
	return out
}

// BenchmarkProfileListView: one frame of the profile list (120x40) while
// scrolling, over 10k, 100k and 1M rows. Rows come from the real engine's
// Summaries (pages fetched as the viewport moves); the cost per frame must
// stay flat as N grows. With LOUPE_BENCH_DATA set, a last case uses the
// real ProfileIndex of that store.
func BenchmarkProfileListView(b *testing.B) {
	e := openEngine(b)
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			a := newTestApp(b, e, 120, 40)
			run(b, a, a.Profiles.SetIndex(seqIndex{n}))
			benchFrames(b, a)
		})
	}
	if dir := os.Getenv("LOUPE_BENCH_DATA"); dir != "" {
		b.Run("real-index", func(b *testing.B) {
			be := openBench(b, dir)
			a := newTestApp(b, be, 120, 40)
			benchFrames(b, a)
		})
	}
}

func benchFrames(b *testing.B, a *App) {
	down := keyMsg("j")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%40 == 0 {
			// A page jump: new rows to render (and fetch, off the clock).
			b.StopTimer()
			send(b, a, keyMsg("pgdown"))
			b.StartTimer()
		}
		a.Update(down)
		_ = a.View()
	}
}

func openBench(b *testing.B, dir string) *engine.Engine {
	e, err := engine.Open(dir, engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

func benchData(b *testing.B) string {
	dir := os.Getenv("LOUPE_BENCH_DATA")
	if dir == "" {
		b.Skip("set LOUPE_BENCH_DATA to a data dir built by `loupe demo --profiles 1000000 --no-tui --data DIR`")
	}
	return dir
}

// BenchmarkFirstFrame: from a fresh app to the first frame showing rows
// over the 1M-profile demo (goal ≤ 500 ms). The list's first screen comes
// from the newest entries of the last-seen index; the full list is still
// loading in the background when the frame is drawn, as it would be in the
// running program, so it is left out of the measurement.
func BenchmarkFirstFrame(b *testing.B) {
	e := openBench(b, benchData(b))
	for b.Loop() {
		c, _ := NewContext(context.Background(), NewBackend(e), Options{Now: time.Now})
		a, _ := NewApp(c, nil)
		a.noSpinner = true
		_, cmd := a.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
		runUntil(b, a, tea.Batch(cmd, a.Init()), func() bool { return strings.Contains(a.View(), "▶p") })
	}
}

// runUntil executes commands depth first (what a delivered message asks
// for runs before older pending work, as a user would see it) until done
// reports true.
func runUntil(t testing.TB, a *App, cmd tea.Cmd, done func() bool) {
	t.Helper()
	stack := []tea.Cmd{cmd}
	for len(stack) > 0 && !done() {
		c := stack[0]
		stack = stack[1:]
		if c == nil {
			continue
		}
		switch m := c().(type) {
		case nil:
		case tea.BatchMsg:
			stack = append(append([]tea.Cmd{}, m...), stack...)
		default:
			_, next := a.Update(m)
			stack = append([]tea.Cmd{next}, stack...)
		}
	}
	if !done() {
		t.Fatal("no rows on screen after every command ran")
	}
}

// BenchmarkSearchEmailPrefix: the search the `/` box runs, over the
// 1M-profile demo (goal ≤ 20 ms). It scans the rules snapshot, whose
// build the first search waits for (BenchmarkSnapshot/build in engine
// measures that); the loop measures the searches after it.
func BenchmarkSearchEmailPrefix(b *testing.B) {
	e := openBench(b, benchData(b))
	ctx := context.Background()
	if _, err := e.SearchIdentifiers(ctx, "email:a", 1); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		p := "email:" + string(rune('a'+i%26)) + string(rune('a'+(i/26)%26))
		if _, err := e.SearchIdentifiers(ctx, p, 500); err != nil {
			b.Fatal(err)
		}
	}
}

// Each view's keys, the navigation keys and the globals are active
// together: no key may mean two things; rebinding one onto another's key
// is caught, in the profiles view and in the sync view.
func TestProfilesKeysDoNotCollide(t *testing.T) {
	if err := CheckKeys(keys.DefaultGlobal(), keys.DefaultNav(), profiles.DefaultKeyMap(), syncview.DefaultKeyMap()); err != nil {
		t.Fatal(err)
	}
	g, n, pk, sk := keys.DefaultGlobal(), keys.DefaultNav(), profiles.DefaultKeyMap(), syncview.DefaultKeyMap()
	if err := keys.Rebind(map[string][]string{"search": {"j"}}, g, n, pk, sk); err != nil {
		t.Fatal(err)
	}
	if err := CheckKeys(g, n, pk, sk); err == nil {
		t.Fatal("search on j collides with down, not reported")
	}
	c, _ := NewContext(context.Background(), NewBackend(openEngine(t)), Options{})
	if _, err := NewApp(c, map[string][]string{"filter": {"q"}}); err == nil {
		t.Fatal("NewApp accepted filter on q (quit)")
	}
}

// The sync view's actions rebind by name, collide with the globals and
// navigation like any other, and may reuse a key another view uses.
func TestSyncKeysRebindAndCollide(t *testing.T) {
	g, n, pk, sk := keys.DefaultGlobal(), keys.DefaultNav(), profiles.DefaultKeyMap(), syncview.DefaultKeyMap()
	if err := keys.Rebind(map[string][]string{"sync_all": {"j"}}, g, n, pk, sk); err != nil {
		t.Fatal(err)
	}
	err := CheckKeys(g, n, pk, sk)
	if err == nil || !strings.Contains(err.Error(), "sync view") || !strings.Contains(err.Error(), `"j"`) {
		t.Fatalf("sync_all on j: %v", err)
	}
	// s sorts in Profiles and syncs in Sync: different views, no collision.
	if !slices.Contains(profiles.DefaultKeyMap().Sort.Keys(), "s") || !slices.Contains(syncview.DefaultKeyMap().Sync.Keys(), "s") {
		t.Fatal("defaults changed: s is no longer shared")
	}
	e := openEngine(t)
	newApp := func(bindings map[string][]string) (*App, error) {
		c, err := NewContext(context.Background(), NewBackend(e), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return NewApp(c, bindings)
	}
	if _, err := newApp(map[string][]string{"sync": {"q"}}); err == nil {
		t.Fatal("NewApp accepted sync on q (quit)")
	}
	a, err := newApp(map[string][]string{"sync": {"x"}, "sync_all": {"X"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Sync.Keys.Sync.Help().Key != "x" {
		t.Fatalf("help %q", a.Sync.Keys.Sync.Help().Key)
	}
	if _, err := newApp(map[string][]string{"sycn": {"x"}}); err == nil {
		t.Fatal("unknown action accepted")
	}
}
