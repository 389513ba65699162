package sync

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/loupe-cdp/loupe/engine"
)

// openEngine opens a real engine in a fresh data dir, closed when the test
// ends.
func openEngine(t testing.TB) *engine.Engine {
	t.Helper()
	eng, err := engine.Open(t.TempDir(), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Close(); err != nil {
			t.Errorf("close engine: %v", err)
		}
	})
	return eng
}

func writeSources(t testing.TB, dir, yaml string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, SourcesFile), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// commitCounter is the real engine with its IngestBatch calls counted, so
// a test can tell that a run committed nothing it need not (every call is
// one fsync'd transaction). Everything else is the engine's own.
type commitCounter struct {
	*engine.Engine
	batches atomic.Int64
}

func (c *commitCounter) IngestBatch(ctx context.Context, msgs []engine.Message, cp *engine.Checkpoint) (engine.IngestStats, error) {
	c.batches.Add(1)
	return c.Engine.IngestBatch(ctx, msgs, cp)
}

func engineStats(t testing.TB, eng *engine.Engine) engine.Stats {
	t.Helper()
	st, err := eng.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// userEvents reads every event of the profile ref names, newest first.
func userEvents(t testing.TB, eng *engine.Engine, ref string) []engine.StoredEvent {
	t.Helper()
	var out []engine.StoredEvent
	cursor := ""
	for {
		p, err := eng.Events(context.Background(), ref, cursor, 500)
		if err != nil {
			t.Fatalf("events of %s: %v", ref, err)
		}
		out = append(out, p.Events...)
		if p.Next == "" {
			return out
		}
		cursor = p.Next
	}
}

func checkpoint(t testing.TB, eng *engine.Engine, source string) []byte {
	t.Helper()
	cp, err := eng.Checkpoint(context.Background(), source)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// setCheckpoint commits a source's checkpoint the way a run does (an
// IngestBatch without events).
func setCheckpoint(t testing.TB, eng *engine.Engine, source string, value []byte) {
	t.Helper()
	if _, err := eng.IngestBatch(context.Background(), nil, &engine.Checkpoint{Source: source, Value: value}); err != nil {
		t.Fatal(err)
	}
	if got := checkpoint(t, eng, source); string(got) != string(value) {
		t.Fatalf("checkpoint %s reads back %q, want %q", source, got, value)
	}
}

func quarantined(t testing.TB, eng *engine.Engine, source string) []engine.QuarantineEntry {
	t.Helper()
	q, err := eng.Quarantined(context.Background(), source, 0)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
