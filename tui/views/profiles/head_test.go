package profiles

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/tui/common"
	"github.com/loupe-cdp/loupe/tui/keys"
	"github.com/loupe-cdp/loupe/tui/theme"
)

// newModel builds the profiles view over a real engine holding n
// profiles, more than the first screen's head reads.
func newModel(t *testing.T, n int) (*Model, *engine.Engine) {
	t.Helper()
	e, err := engine.Open(t.TempDir(), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"identify","messageId":"m%d","userId":"u%d","timestamp":"2026-10-01T00:%02d:%02dZ"}`+"\n", i, i, i/60%60, i%60)
	}
	if _, err := e.IngestReader(context.Background(), strings.NewReader(b.String()), "test", engine.IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	c := &common.Context{Ctx: context.Background(), Backend: e, Styles: theme.New(), Global: keys.DefaultGlobal(), Nav: keys.DefaultNav(), Now: time.Now}
	m := New(c)
	m.SetSize(120, 30)
	return m, e
}

// initCmds runs Init and returns the head and full-index commands.
func initCmds(t *testing.T, m *Model) (head, full tea.Cmd) {
	t.Helper()
	batch, ok := m.Init()().(tea.BatchMsg)
	if !ok || len(batch) != 2 {
		t.Fatalf("Init should ask for the head and the full index, got %T", batch)
	}
	return batch[0], batch[1]
}

// deliver hands msg to the view and runs what it asks for (pages) once.
func deliver(m *Model, msg tea.Msg) {
	if cmd := m.Update(msg); cmd != nil {
		if out := cmd(); out != nil {
			if b, ok := out.(tea.BatchMsg); ok {
				for _, c := range b {
					if c != nil {
						m.Update(c())
					}
				}
			} else {
				m.Update(out)
			}
		}
	}
}

func TestFirstScreenFromHeadThenFullIndex(t *testing.T) {
	m, _ := newModel(t, headSize+100)
	head, full := initCmds(t, m)
	deliver(m, head())
	if _, ok := m.ix.(headIndex); !ok || m.ix.Len() != headSize+100 {
		t.Fatalf("after the head: index %T with %d rows", m.ix, m.ix.Len())
	}
	if s, ok := m.summary(0); !ok || s.UserID != fmt.Sprintf("u%d", headSize+99) {
		t.Fatalf("first row %+v (loaded %v), want the newest profile", s, ok)
	}
	m.table.SetCursor(7)
	deliver(m, full())
	if _, ok := m.ix.(*engine.ProfileIndex); !ok {
		t.Fatalf("after the full index: %T", m.ix)
	}
	if m.table.Cursor() != 7 {
		t.Fatalf("the full index moved the cursor to %d", m.table.Cursor())
	}
}

func TestLateHeadNeverReplacesFullIndex(t *testing.T) {
	m, _ := newModel(t, 50)
	head, full := initCmds(t, m)
	deliver(m, full())
	deliver(m, head())
	if _, ok := m.ix.(*engine.ProfileIndex); !ok {
		t.Fatalf("a late head replaced the full index: %T", m.ix)
	}
}
