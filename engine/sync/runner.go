package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/loupe-cdp/loupe/engine"
)

// Batch limits: a page or file chunk never exceeds these in one IngestBatch.
const (
	MaxBatch      = 2000
	MaxBatchBytes = 8 << 20
)

// Store is what a sync needs of the engine; *engine.Engine satisfies it.
// Records that do not fit a source's mapping and malformed pages go to
// Quarantine (see Engine.Quarantined); there is no other place for them.
type Store interface {
	Dir() string
	IngestBatch(ctx context.Context, msgs []engine.Message, cp *engine.Checkpoint) (engine.IngestStats, error)
	Checkpoint(ctx context.Context, source string) ([]byte, error)
	Quarantine(ctx context.Context, source, key, reason string, data []byte) error
}

var _ Store = (*engine.Engine)(nil)

// Result is what one run of one source did. Its JSON is the line `loupe
// sync --json` prints. Quarantined counts records that did not fit the
// mapping or a malformed page (see Engine.Quarantined) plus messages the
// engine rejected (see the data dir's rejects file).
type Result struct {
	Source      string  `json:"source"`
	Fetched     int64   `json:"fetched"`
	Ingested    int64   `json:"ingested"`
	Duplicates  int64   `json:"duplicates"`
	Quarantined int64   `json:"quarantined"`
	Cursor      string  `json:"cursor"`
	ElapsedMS   int64   `json:"elapsed_ms"`
	Error       *string `json:"error"`
}

// Err returns the run's error, or nil.
func (r Result) Err() error {
	if r.Error == nil {
		return nil
	}
	return errors.New(*r.Error)
}

// Progress is reported after every committed page and once when a source
// is done (Done set, Result final).
type Progress struct {
	Kind   string
	Result Result
	Pages  int
	Done   bool
}

// Runner runs sources against a Store. The zero value of every field but
// Store is usable.
type Runner struct {
	// Store is the engine synced into: a full Store (*engine.Engine) for
	// Run, RunSource and Watch; Test only resolves paths against its Dir.
	Store Store
	// Progress, if set, is called from the running goroutine.
	Progress func(Progress)
	// LookupEnv expands ${ENV} (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// HTTPClient is used by http sources (default: a client without
	// overall timeout; per-request timeouts come from the source).
	HTTPClient *http.Client
	// BackoffBase and BackoffMax bound the retry delays of http sources
	// (defaults 500ms and 30s); Retry-After above BackoffMax is capped at
	// 5 minutes.
	BackoffBase, BackoffMax time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits between http retries (default: a timer honouring ctx);
	// tests record the delays instead of waiting.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Run runs the named sources of st.Dir()/sources.yaml once, in order (all
// when names is empty), and returns one Result per source. A source's
// failure is in its Result; the error is for a bad sources.yaml or an
// unknown name.
func Run(ctx context.Context, st Store, names []string, progress func(Progress)) ([]Result, error) {
	r := &Runner{Store: st, Progress: progress}
	return r.Run(ctx, names)
}

// Select returns the named sources (all when names is empty).
func Select(all []Source, names []string) ([]Source, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []Source
	for _, n := range names {
		found := false
		for _, s := range all {
			if s.Name == n {
				out = append(out, s)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %q (see loupe sources list)", ErrNoSource, n)
		}
	}
	return out, nil
}

// Run runs the named sources once.
func (r *Runner) Run(ctx context.Context, names []string) ([]Result, error) {
	all, err := LoadSources(r.Store.Dir())
	if err != nil {
		return nil, err
	}
	srcs, err := Select(all, names)
	if err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(srcs))
	for _, s := range srcs {
		if ctx.Err() != nil {
			break
		}
		out = append(out, r.RunSource(ctx, s))
	}
	return out, ctx.Err()
}

// Watch runs each named source on its interval until ctx is cancelled,
// calling done after every run. The first round runs at once.
func (r *Runner) Watch(ctx context.Context, names []string, done func(Result)) error {
	all, err := LoadSources(r.Store.Dir())
	if err != nil {
		return err
	}
	srcs, err := Select(all, names)
	if err != nil {
		return err
	}
	next := make([]time.Time, len(srcs))
	for {
		now := time.Now()
		wake := now.Add(time.Hour)
		for i, s := range srcs {
			if ctx.Err() != nil {
				return nil
			}
			if !next[i].After(now) {
				res := r.RunSource(ctx, s)
				if done != nil && ctx.Err() == nil {
					done(res)
				}
				next[i] = time.Now().Add(s.EveryInterval())
			}
			if next[i].Before(wake) {
				wake = next[i]
			}
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// page is one unit a reader hands to the runner: messages and the
// checkpoint that covers them commit together.
type page struct {
	msgs       []engine.Message
	bad        []badRecord
	checkpoint []byte // nil: unchanged
	cursor     string // human-readable position after this page
	newest     time.Time
	fetched    int
	done       bool  // no more pages this run
	stop       error // stop the run after committing this page (malformed page)
}

type badRecord struct {
	key, reason string
	data        []byte
	line        int // position in the page, for previews
}

// reader reads one source from a checkpoint.
type reader interface {
	next(ctx context.Context) (page, error)
	close()
}

func (r *Runner) open(ctx context.Context, s Source, cp []byte) (reader, error) {
	switch s.Kind {
	case KindPostgres:
		return openPostgres(ctx, s, cp)
	case KindHTTP:
		return openHTTP(s, cp, r.httpOptions()), nil
	case KindFile:
		return openFile(s, r.Store.Dir(), cp)
	}
	return nil, fmt.Errorf("kind %q", s.Kind)
}

// RunSource runs one source once.
func (r *Runner) RunSource(ctx context.Context, s Source) Result {
	start := r.now()
	res := Result{Source: s.Name}
	var pages int
	var newest time.Time
	report := func(done bool) {
		res.ElapsedMS = r.now().Sub(start).Milliseconds()
		if r.Progress != nil {
			r.Progress(Progress{Kind: s.Kind, Result: res, Pages: pages, Done: done})
		}
	}
	err := func() error {
		st := r.Store
		rs, err := s.resolved(r.LookupEnv)
		if err != nil {
			return err
		}
		cp, err := st.Checkpoint(ctx, s.Name)
		if err != nil {
			return fmt.Errorf("read checkpoint: %w", err)
		}
		res.Cursor = cursorOf(s.Kind, cp)
		rd, err := r.open(ctx, rs, cp)
		if err != nil {
			return err
		}
		defer rd.close()
		report(false)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			p, err := rd.next(ctx)
			if err != nil {
				return err
			}
			res.Fetched += int64(p.fetched)
			for _, b := range p.bad {
				if err := st.Quarantine(ctx, s.Name, b.key, b.reason, b.data); err != nil {
					return fmt.Errorf("quarantine %s: %w", b.key, err)
				}
				res.Quarantined++
			}
			// Split into batches within the engine's limits; the checkpoint
			// rides with the last one, so a crash in between re-reads the
			// page and the earlier batches come back as duplicates.
			for _, b := range batches(p.msgs) {
				last := len(p.msgs) == 0 || &b[len(b)-1] == &p.msgs[len(p.msgs)-1]
				var ecp *engine.Checkpoint
				if last && p.checkpoint != nil {
					ecp = &engine.Checkpoint{Source: s.Name, Value: p.checkpoint}
				}
				if len(b) == 0 && ecp == nil {
					continue
				}
				is, err := st.IngestBatch(ctx, b, ecp)
				if err != nil {
					return fmt.Errorf("ingest: %w", err)
				}
				res.Ingested += is.Ingested
				res.Duplicates += is.Duplicates
				res.Quarantined += is.Rejected
			}
			if p.cursor != "" {
				res.Cursor = p.cursor
			}
			if p.newest.After(newest) {
				newest = p.newest
			}
			pages++
			if p.stop != nil {
				return p.stop
			}
			if p.done {
				return nil
			}
			report(false)
		}
	}()
	if err != nil {
		msg := err.Error()
		res.Error = &msg
	}
	res.ElapsedMS = r.now().Sub(start).Milliseconds()
	// A cancelled run still records what it committed; one cancelled
	// before its first page leaves the status as it was.
	if ctx.Err() == nil || err == nil || pages > 0 || res.Ingested > 0 {
		r.saveStatus(context.WithoutCancel(ctx), s, res, newest)
	}
	report(true)
	return res
}

// cursorOf renders a stored checkpoint for Result.Cursor.
func cursorOf(kind string, cp []byte) string {
	if cp == nil {
		return ""
	}
	switch kind {
	case KindPostgres:
		var c pgCheckpoint
		if json.Unmarshal(cp, &c) == nil {
			return c.String()
		}
	case KindHTTP:
		var c httpCheckpoint
		if json.Unmarshal(cp, &c) == nil {
			return c.String()
		}
	case KindFile:
		var c fileCheckpoint
		if json.Unmarshal(cp, &c) == nil {
			return c.String()
		}
	}
	return strings.TrimSpace(string(cp))
}

// batches splits msgs into runs of at most MaxBatch messages and
// MaxBatchBytes; no messages is one empty batch (for a checkpoint alone).
func batches(msgs []engine.Message) [][]engine.Message {
	if len(msgs) == 0 {
		return [][]engine.Message{nil}
	}
	var out [][]engine.Message
	start, size := 0, 0
	for i, m := range msgs {
		if i > start && (i-start >= MaxBatch || size+len(m.Data) > MaxBatchBytes) {
			out = append(out, msgs[start:i])
			start, size = i, 0
		}
		size += len(m.Data)
	}
	return append(out, msgs[start:])
}
