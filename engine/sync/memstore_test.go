package sync

import (
	"context"
	"maps"
	"os"
	gosync "sync"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/engine/segment"
)

// memStore is an in-memory Store with the engine's contract: dedupe by
// messageId, reject invalid messages, checkpoint atomically with events.
type memStore struct {
	mu          gosync.Mutex
	dir         string
	events      map[string][]byte // messageId -> raw
	order       []string
	checkpoints map[string][]byte
	quarantine  []qEntry
	rejected    int
	batches     int
	failIngest  error
}

func newMemStore(t testing.TB) *memStore {
	return &memStore{dir: t.TempDir(), events: map[string][]byte{}, checkpoints: map[string][]byte{}}
}

func (m *memStore) Dir() string { return m.dir }

func (m *memStore) IngestBatch(ctx context.Context, msgs []engine.Message, cp *engine.Checkpoint) (engine.IngestStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failIngest != nil {
		return engine.IngestStats{}, m.failIngest
	}
	var st engine.IngestStats
	m.batches++
	for _, msg := range msgs {
		st.Read++
		ev, err := segment.Parse(msg.Data, time.Now())
		if err != nil {
			st.Rejected++
			m.rejected++
			continue
		}
		if _, dup := m.events[ev.MessageID]; dup {
			st.Duplicates++
			continue
		}
		m.events[ev.MessageID] = append([]byte(nil), msg.Data...)
		m.order = append(m.order, ev.MessageID)
		st.Ingested++
	}
	if cp != nil {
		m.checkpoints[cp.Source] = append([]byte(nil), cp.Value...)
	}
	return st, nil
}

func (m *memStore) Checkpoint(ctx context.Context, source string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checkpoints[source], nil
}

func (m *memStore) Quarantine(ctx context.Context, source, key, reason string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.quarantine = append(m.quarantine, qEntry{Source: source, Key: key, Reason: reason, Data: data})
	return nil
}

func (m *memStore) snapshot() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.events)
}

func writeSources(t testing.TB, dir, yaml string) {
	t.Helper()
	if err := os.WriteFile(dir+"/"+SourcesFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

type qEntry struct {
	Source, Key, Reason string
	Data                []byte
}
