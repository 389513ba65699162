package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/loupe-cdp/loupe/engine"
)

// statusKey is the checkpoint name under which a source's last-run record
// is kept (source names cannot contain '/').
func statusKey(name string) string { return "sync-status/" + name }

// statusRecord is persisted after every run.
type statusRecord struct {
	LastRun   time.Time `json:"last_run"`
	Last      Result    `json:"last"`
	Rows      int64     `json:"rows"`   // events ingested by this source, all runs
	Newest    time.Time `json:"newest"` // newest cursor time synced, when the cursor is a time
	LastError string    `json:"last_error,omitempty"`
	ErrorTime time.Time `json:"error_time,omitzero"`
}

// SourceStatus is what the Sync tab and `loupe sources list` show of a
// source.
type SourceStatus struct {
	Name     string        `json:"name"`
	Kind     string        `json:"kind"`
	Interval time.Duration `json:"interval"`
	// LastRun is zero when the source never ran.
	LastRun time.Time `json:"last_run,omitzero"`
	Last    *Result   `json:"last,omitempty"`
	// Rows counts events ingested by this source over all runs.
	Rows   int64  `json:"rows"`
	Cursor string `json:"cursor"`
	// Lag is now minus the newest cursor time synced; LagKnown is false for
	// sources whose position is not a time (next links, files).
	Lag      time.Duration `json:"lag"`
	LagKnown bool          `json:"lag_known"`
	// LastError is the most recent failure, kept until a run succeeds.
	LastError string `json:"last_error,omitempty"`
}

// CheckpointReader is the read side of Store.
type CheckpointReader interface {
	Checkpoint(ctx context.Context, source string) ([]byte, error)
}

// Status reports every declared source of dataDir. now is the clock (nil:
// time.Now).
func Status(ctx context.Context, st CheckpointReader, dataDir string, now func() time.Time) ([]SourceStatus, error) {
	srcs, err := LoadSources(dataDir)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	out := make([]SourceStatus, 0, len(srcs))
	for _, s := range srcs {
		ss := SourceStatus{Name: s.Name, Kind: s.Kind, Interval: s.EveryInterval()}
		cp, err := st.Checkpoint(ctx, s.Name)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		ss.Cursor = cursorOf(s.Kind, cp)
		raw, err := st.Checkpoint(ctx, statusKey(s.Name))
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		if raw != nil {
			var rec statusRecord
			if json.Unmarshal(raw, &rec) == nil {
				ss.LastRun, ss.Rows, ss.LastError = rec.LastRun, rec.Rows, rec.LastError
				last := rec.Last
				ss.Last = &last
				if !rec.Newest.IsZero() {
					ss.Lag, ss.LagKnown = now().Sub(rec.Newest), true
				}
			}
		}
		out = append(out, ss)
	}
	return out, nil
}

// saveStatus records the run; it never fails the run.
func (r *Runner) saveStatus(ctx context.Context, s Source, res Result, newest time.Time) {
	var rec statusRecord
	if raw, err := r.Store.Checkpoint(ctx, statusKey(s.Name)); err == nil && raw != nil {
		_ = json.Unmarshal(raw, &rec)
	}
	rec.LastRun = r.now().UTC()
	rec.Last = res
	rec.Rows += res.Ingested
	if newest.After(rec.Newest) {
		rec.Newest = newest.UTC()
	}
	if res.Error != nil {
		rec.LastError, rec.ErrorTime = *res.Error, rec.LastRun
	} else {
		rec.LastError, rec.ErrorTime = "", time.Time{}
	}
	b, _ := json.Marshal(rec)
	_, _ = r.Store.IngestBatch(ctx, nil, &engine.Checkpoint{Source: statusKey(s.Name), Value: b})
}

// PreviewRow is one record as `loupe sources test` shows it: the mapped
// Segment message, or why it would be quarantined.
type PreviewRow struct {
	Key     string          `json:"key,omitempty"`
	Message json.RawMessage `json:"message,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// Test connects to the source and maps its first n records from the start,
// writing nothing. dataDir resolves relative file paths.
func (r *Runner) Test(ctx context.Context, s Source, n int) ([]PreviewRow, error) {
	rs, err := s.resolved(r.LookupEnv)
	if err != nil {
		return nil, err
	}
	if rs.Postgres != nil && rs.Postgres.PageSize > n || (rs.Postgres != nil && rs.Postgres.PageSize == 0) {
		p := *rs.Postgres
		p.PageSize = max(n, 1)
		rs.Postgres = &p
	}
	rd, err := r.open(ctx, rs, nil)
	if err != nil {
		return nil, err
	}
	defer rd.close()
	var out []PreviewRow
	for len(out) < n {
		p, err := rd.next(ctx)
		if err != nil {
			return out, err
		}
		rows := make([]PreviewRow, 0, len(p.bad)+len(p.msgs))
		lines := make([]int, 0, cap(rows))
		for _, b := range p.bad {
			rows = append(rows, PreviewRow{Key: b.key, Error: b.reason})
			lines = append(lines, b.line)
		}
		for _, m := range p.msgs {
			rows = append(rows, PreviewRow{Key: m.Source, Message: json.RawMessage(m.Data)})
			lines = append(lines, m.Line)
		}
		idx := make([]int, len(rows))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return lines[idx[a]] < lines[idx[b]] })
		for _, i := range idx {
			out = append(out, rows[i])
		}
		if p.stop != nil {
			return out, p.stop
		}
		if p.done {
			break
		}
	}
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}
