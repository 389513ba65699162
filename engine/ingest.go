package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/engine/internal/digestmap"
	"github.com/loupe-cdp/loupe/engine/segment"
	"github.com/loupe-cdp/loupe/store"
)

// IngestOptions shape one ingest.
type IngestOptions struct {
	// Progress, when set, is called after each transaction (up to 10,000
	// events) and at the end.
	Progress func(IngestProgress)
	// Checkpoint, when set, is called at each commit with the line number of
	// the last record the commit covers; a non-nil result is written in the
	// same transaction (sync sources use this to resume exactly).
	Checkpoint func(line int) *Checkpoint
	// OnReject, when set, is told about each rejected record as it happens.
	OnReject func(source string, line int, reason string)
	// SizeHint is about how many bytes IngestReader's stream holds, when
	// the caller has an idea (a generator, a download with a length);
	// the in-memory indexes reserve room for it. IngestFiles uses each
	// file's size instead.
	SizeHint int64
}

// IngestProgress reports how far an ingest has got.
type IngestProgress struct {
	File       string
	Bytes      int64 // read so far from the current file (before gunzip)
	TotalBytes int64 // size of the current file, 0 if unknown (stdin)
	Stats      IngestStats
}

// Tuning of the ingest pipeline. A profile is written once per unit that
// touches it, so bigger units write active profiles less often (10,000
// events against 2,000 cut the 1M demo's CPU by ~6%); the snapshot is
// refreshed every 200,000 events either way, because the maps of what was
// written since grow until then (BENCHMARKS.md).
const (
	decodeBatch   = 256      // records handed to a decoder at once
	unitEvents    = 10_000   // events per transaction
	unitBytes     = 32 << 20 // raw bytes per transaction
	refreshEvery  = 20       // units between snapshot refreshes
	profileCacheN = 100_000  // profiles kept in memory between refreshes
	maxEventBytes = 1 << 20  // larger messages are rejected

	// minEventBytes is what an event from a Segment SDK rarely falls
	// under once its context is in: the demo's average 750 bytes, the
	// SDKs' track events 700-1,500. It turns an input's size into the
	// room the in-memory indexes reserve (writer.reserve).
	minEventBytes = 640
)

// IngestFiles ingests each path in turn; "-" reads standard input. A file
// that cannot be opened is an error; bad lines inside a file are rejected
// and counted, and the rest goes on.
func (e *Engine) IngestFiles(ctx context.Context, paths []string, opts IngestOptions) (IngestStats, error) {
	var total IngestStats
	start := time.Now()
	for _, p := range paths {
		var r io.Reader
		var size int64
		name := p
		if p == "-" {
			r, name = os.Stdin, "stdin"
		} else {
			f, err := os.Open(p)
			if err != nil {
				return total, fmt.Errorf("ingest: %w", err)
			}
			if fi, err := f.Stat(); err == nil {
				size = fi.Size()
			}
			defer f.Close()
			r = f
		}
		st, err := e.ingest(ctx, r, name, size, opts, &total)
		total.add(st)
		if err != nil {
			total.Elapsed = time.Since(start)
			return total, err
		}
	}
	total.Elapsed = time.Since(start)
	return total, nil
}

// IngestReader ingests one stream named name (for error reports).
func (e *Engine) IngestReader(ctx context.Context, r io.Reader, name string, opts IngestOptions) (IngestStats, error) {
	start := time.Now()
	st, err := e.ingest(ctx, r, name, 0, opts, nil)
	st.Elapsed = time.Since(start)
	return st, err
}

func (s *IngestStats) add(o IngestStats) {
	s.Read += o.Read
	s.Ingested += o.Ingested
	s.Duplicates += o.Duplicates
	s.Rejected += o.Rejected
	s.Suppressed += o.Suppressed
	s.ProfilesCreated += o.ProfilesCreated
	s.Merges += o.Merges
	s.RefusedMerges += o.RefusedMerges
}

type countingReader struct {
	r io.Reader
	n int64
	sync.Mutex
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.Lock()
	c.n += int64(n)
	c.Unlock()
	return n, err
}

func (c *countingReader) count() int64 {
	c.Lock()
	defer c.Unlock()
	return c.n
}

// decoded is one input record after parsing, with the per-event work
// that needs nothing from the store done too: it runs on every core, where
// the writer that takes it next runs on one.
type decoded struct {
	line    int
	data    []byte
	ev      segment.Event
	err     error
	digest  msgDigest       // of ev.MessageID
	ids     []identity.ID   // usable identifiers, normalised
	idKeys  []digestmap.Key // identity index digest of each of ids
	blocked []identity.ID   // identifiers on the blocklist
	header  []byte          // the start of the event's stored body (codec.go)
	sums    []any           // its properties named in the profile config's SumProperties
	consent consentPrep
}

// prepare parses d.data and does the writer's order-free work, with the
// dir's secret for identifier digests. It is safe for concurrent use,
// each goroutine with its own signalCache.
func (e *Engine) prepare(d *decoded, now time.Time, sc *signalCache, secret []byte) {
	if len(d.data) > maxEventBytes {
		d.err = fmt.Errorf("message is %d bytes, over the %d-byte limit", len(d.data), maxEventBytes)
		return
	}
	if d.ev, d.err = segment.Parse(d.data, now); d.err != nil {
		return
	}
	d.digest = digestMessage(d.ev.MessageID)
	d.ids, d.blocked = e.identifiers(&d.ev)
	if len(d.ids) == 0 {
		return // rejected by the writer
	}
	d.idKeys = make([]digestmap.Key, len(d.ids))
	for i, id := range d.ids {
		d.idKeys[i] = identDigest(secret, id)
	}
	d.header = eventHeader(&d.ev)
	d.sums = summedProperties(&d.ev, &e.cfg.Profiles)
	d.consent = e.prepareConsent(&d.ev, sc)
}

// decodedArrays recycles the arrays a job's events are decoded into once
// the writer is done with them: a fresh one per batch was 3.4 GB of the 1M
// demo ingest's allocations. What the writer keeps of an event (its
// strings, maps and slices) lives outside the array.
var decodedArrays decodedPool

type decodedPool struct{ p sync.Pool }

// get returns an array of n decoded, whose elements the caller sets whole.
func (dp *decodedPool) get(n int) []decoded {
	if a, ok := dp.p.Get().(*[]decoded); ok && cap(*a) >= n {
		return (*a)[:n]
	}
	return make([]decoded, n)
}

// put takes back a, cleared so that it holds on to nothing.
func (dp *decodedPool) put(a []decoded) {
	clear(a)
	a = a[:0]
	dp.p.Put(&a)
}

type decodeJob struct {
	recs []segment.Record
	out  []decoded
	done chan struct{}
}

func (e *Engine) ingest(ctx context.Context, r io.Reader, name string, size int64, opts IngestOptions, before *IngestStats) (_ IngestStats, err error) {
	secret, err := e.secret() // for the identifier digests the parse workers compute
	if err != nil {
		return IngestStats{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cr := &countingReader{r: r}
	rd, err := segment.NewReader(cr, name)
	if err != nil {
		return IngestStats{}, fmt.Errorf("ingest %s: %w", name, err)
	}

	// Stage 1: read records into batches; stage 2: parse on every core;
	// stage 3 (this goroutine): resolve identities and write, in input order.
	workers := max(1, runtime.GOMAXPROCS(0))
	jobs := make(chan *decodeJob, workers*2)
	ordered := make(chan *decodeJob, workers*4)
	readErr := make(chan error, 1)
	now := e.now()
	go func() {
		defer close(ordered)
		defer close(jobs)
		batch := make([]segment.Record, 0, decodeBatch)
		send := func() bool {
			j := &decodeJob{recs: batch, done: make(chan struct{})}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return false
			}
			select {
			case ordered <- j:
			case <-ctx.Done():
				return false
			}
			batch = make([]segment.Record, 0, decodeBatch)
			return true
		}
		for {
			rec, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				readErr <- fmt.Errorf("ingest %s: %w", name, err)
				return
			}
			batch = append(batch, rec)
			if len(batch) == decodeBatch && !send() {
				return
			}
		}
		if len(batch) > 0 {
			send()
		}
		readErr <- nil
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc signalCache
			for j := range jobs {
				j.out = decodedArrays.get(len(j.recs))
				for i, rec := range j.recs {
					d := &j.out[i]
					*d = decoded{line: rec.Line, data: rec.Data}
					if rec.Err != nil {
						d.err = rec.Err
					} else {
						e.prepare(d, now, &sc, secret)
					}
				}
				close(j.done)
			}
		}()
	}
	defer wg.Wait()

	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	defer e.discardWriterStateOnError(&err)
	w, err := e.newWriter()
	if err != nil {
		return IngestStats{}, err
	}
	w.onReject = opts.OnReject
	if size > 0 {
		w.reserve(size)
	} else {
		w.reserve(opts.SizeHint)
	}
	defer w.close()
	lastLine := 0
	progress := func() {
		if opts.Progress == nil {
			return
		}
		st := w.stats
		if before != nil {
			st.add(*before)
		}
		opts.Progress(IngestProgress{File: name, Bytes: cr.count(), TotalBytes: size, Stats: st})
	}
	flush := func() error {
		if opts.Checkpoint != nil {
			w.unit.checkpoint = opts.Checkpoint(lastLine)
		}
		return w.flush(false)
	}
	for j := range ordered {
		select {
		case <-j.done:
		case <-ctx.Done():
			return w.stats, ctx.Err()
		}
		w.warm(j)
		for i := range j.out {
			d := &j.out[i]
			lastLine = d.line
			if err := w.add(d, name); err != nil {
				return w.stats, err
			}
			if w.unit.full() {
				if err := flush(); err != nil {
					return w.stats, err
				}
				progress()
			}
		}
		decodedArrays.put(j.out) // nothing keeps a pointer into it
		j.out = nil
		if err := ctx.Err(); err != nil {
			return w.stats, err
		}
	}
	if err := <-readErr; err != nil {
		// Keep what was read before the failure.
		if ferr := flush(); ferr != nil {
			return w.stats, errors.Join(err, ferr)
		}
		w.wait()
		return w.stats, err
	}
	if err := flush(); err != nil {
		return w.stats, err
	}
	if err := w.wait(); err != nil {
		return w.stats, err
	}
	e.compactAfterIngest(ctx)
	progress()
	return w.stats, nil
}

// IngestBatch ingests msgs and stores cp in one transaction, durably
// (synced to disk) before it returns nil. Sync sources and the collector
// use it; a crash at any point leaves either all of it or none.
func (e *Engine) IngestBatch(ctx context.Context, msgs []Message, cp *Checkpoint) (_ IngestStats, err error) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return IngestStats{}, err
	}
	now := e.now()
	ds := make([]decoded, len(msgs))
	var sc signalCache
	secret, err := e.secret()
	if err != nil {
		return IngestStats{}, err
	}
	for i, m := range msgs {
		ds[i] = decoded{line: m.Line, data: m.Data}
		e.prepare(&ds[i], now, &sc, secret)
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	defer e.discardWriterStateOnError(&err)
	w, err := e.newWriter()
	if err != nil {
		return IngestStats{}, err
	}
	defer w.close()
	w.unit.noSplit = true
	for i := range ds {
		if err := w.add(&ds[i], msgs[i].Source); err != nil {
			return w.stats, err
		}
	}
	w.unit.checkpoint = cp
	if err := w.flush(true); err != nil {
		return w.stats, err
	}
	if err := w.wait(); err != nil {
		return w.stats, err
	}
	e.compactAfterIngest(ctx)
	if err := e.db.Sync(); err != nil {
		return w.stats, fmt.Errorf("sync to disk: %w", err)
	}
	w.stats.Elapsed = time.Since(start)
	return w.stats, nil
}

// Checkpoint returns a source's stored checkpoint, nil if none.
func (e *Engine) Checkpoint(ctx context.Context, source string) ([]byte, error) {
	var v []byte
	err := e.db.View(func(t *store.Txn) error {
		b, err := t.Get(store.NameKey(store.PrefixCheckpoint, source))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		v = b
		return err
	})
	return v, err
}

// rejectLine is one line of the rejects file.
type rejectLine struct {
	Time   time.Time       `json:"time"`
	Source string          `json:"source"`
	Line   int             `json:"line,omitempty"`
	Reason string          `json:"reason"`
	Data   json.RawMessage `json:"data,omitempty"`
	Text   string          `json:"text,omitempty"` // the line, when it is not JSON
}

// appendRejects writes rejected lines to the data dir's rejects file.
func (e *Engine) appendRejects(lines []rejectLine) error {
	if len(lines) == 0 {
		return nil
	}
	e.rejectsMu.Lock()
	defer e.rejectsMu.Unlock()
	f, err := os.OpenFile(e.rejectsPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("rejects file: %w", err)
	}
	bw := bufio.NewWriter(f)
	for _, l := range lines {
		b, err := json.Marshal(l)
		if err != nil {
			return fmt.Errorf("rejects file: %w", err)
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("rejects file: %w", err)
	}
	return f.Close()
}

func putUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
