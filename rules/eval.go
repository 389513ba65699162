package rules

import (
	"context"
	"fmt"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"
)

// DefaultMaxErrors is how many RowErrors a Result keeps by default.
const DefaultMaxErrors = 100

// chunkRows is the unit of parallel work and of cancellation checks; a
// multiple of 64 so chunks start on bitmap word boundaries.
const chunkRows = 16384

// EvalOptions tunes one evaluation run.
type EvalOptions struct {
	// Now is what now() returns and what windows and days_since are
	// measured from; the zero value means time.Now() at the start of Eval.
	Now time.Time
	// Purpose, if set, splits the matches into Eligible (consented(Purpose))
	// and ExcludedNoConsent.
	Purpose string
	// Sample is how many matching row indexes to return in Result.Sample
	// (the first ones in table order).
	Sample int
	// OnSample, if set, is called once with the first Sample matching rows
	// as soon as they are known, before the full count finishes (or at the
	// end with fewer rows if fewer match). It runs on an evaluation
	// goroutine: it must return quickly and must not modify the table.
	OnSample func(rows []int)
	// Segments resolves in_segment names. Referenced segments are evaluated
	// once per run, before the rule; cycles fail with ErrSegmentCycle.
	Segments func(name string) (*Rule, bool)
	// Workers is the number of goroutines; default GOMAXPROCS.
	Workers int
	// MaxErrors bounds Result.Errors (default 100); ErrorCount counts all.
	MaxErrors int
}

// Result is the outcome of one evaluation run.
type Result struct {
	Count             int // live, unsuppressed rows that match
	Total             int // live rows in the table
	Eligible          int // matches with consent for EvalOptions.Purpose
	ExcludedNoConsent int // matches without it
	Suppressed        int // live suppressed rows (never evaluated, never matched)
	Sample            []int
	Matches           []uint32 // matching row indexes, ascending
	Errors            []RowError
	ErrorCount        int
	Elapsed           time.Duration
	Plan              string // "columnar", "columnar+vm: <leaves>" or "vm: <reason>"
}

// Eval runs the rule over every live row of t. The caller must hold t's
// read lock (see Table). A row whose evaluation fails does not match and is
// reported in Result.Errors; the run goes on. Eval checks ctx between chunks
// of rows and returns ctx.Err() (with a partial Result) when it is cancelled.
func (r *Rule) Eval(ctx context.Context, t *Table, opts EvalOptions) (Result, error) {
	start := time.Now()
	if opts.Now.IsZero() {
		opts.Now = start
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = DefaultMaxErrors
	}
	segs := map[string]*bitmap{}
	var stack []string
	if r.opts.Name != "" {
		stack = append(stack, r.opts.Name)
	}
	if err := resolveSegments(ctx, t, r, opts, segs, stack); err != nil {
		return Result{Elapsed: time.Since(start)}, err
	}
	res, err := r.scan(ctx, t, opts, segs)
	res.Elapsed = time.Since(start)
	return res, err
}

// resolveSegments evaluates, depth first, the segments rule references.
func resolveSegments(ctx context.Context, t *Table, r *Rule, opts EvalOptions, segs map[string]*bitmap, stack []string) error {
	for _, name := range r.segments {
		for i, s := range stack {
			if s == name {
				return fmt.Errorf("%w: %s", ErrSegmentCycle, strings.Join(append(stack[i:], name), " -> "))
			}
		}
		if _, done := segs[name]; done {
			continue
		}
		if opts.Segments == nil {
			return fmt.Errorf("%w %q (no segment resolver)", ErrUnknownSegment, name)
		}
		sub, ok := opts.Segments(name)
		if !ok {
			return fmt.Errorf("%w %q", ErrUnknownSegment, name)
		}
		if err := resolveSegments(ctx, t, sub, opts, segs, append(stack[:len(stack):len(stack)], name)); err != nil {
			return err
		}
		sopts := opts
		sopts.Purpose, sopts.Sample, sopts.OnSample = "", 0, nil
		res, err := sub.scan(ctx, t, sopts, segs)
		if err != nil {
			return fmt.Errorf("segment %q: %w", name, err)
		}
		var b bitmap
		if len(res.Matches) > 0 {
			b = make(bitmap, int(res.Matches[len(res.Matches)-1])/64+1)
		}
		for _, m := range res.Matches {
			b[m/64] |= 1 << (m % 64)
		}
		segs[name] = &b
	}
	return nil
}

// worker is one evaluation goroutine's state: the planned predicate and,
// for VM leaves, a VM, the cursor its functions read and a reusable env.
type worker struct {
	t        *Table
	rule     *Rule
	cur      cursor
	vm       vm.VM
	env      map[string]any
	traits   map[string]any
	idents   map[string][]string
	identBuf []string    // backs the slices in idents for the current row
	cols     []*traitCol // literal trait keys the rule reads
	envRow   int
	rowErr   error
	pred     pred
	plan     string
}

func newWorker(t *Table, r *Rule, now time.Time, segs map[string]*bitmap, forceVM bool) (*worker, error) {
	w := &worker{
		t:      t,
		rule:   r,
		cur:    cursor{t: t, now: now, nowNs: now.UnixNano(), segs: segs},
		traits: map[string]any{},
		idents: map[string][]string{},
		envRow: -1,
	}
	w.env = map[string]any{"traits": w.traits, "identities": w.idents}
	for _, k := range r.traitKeys {
		if c := t.traits[k]; c != nil {
			w.cols = append(w.cols, c)
		}
	}
	if !forceVM {
		p := &planner{t: t, nowNs: w.cur.nowNs, segs: segs, w: w}
		if f, ok := p.columnar(r.tree); ok {
			w.pred, w.plan = f, p.describe()
			return w, nil
		}
	}
	f, err := w.leaf(r.src, false)
	if err != nil {
		return nil, err
	}
	w.pred, w.plan = f, "vm: "+vmReason(r, forceVM)
	return w, nil
}

func vmReason(r *Rule, forced bool) string {
	if forced {
		return "forced"
	}
	s := r.tree.String()
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return "no columnar plan for " + s
}

// leaf compiles src for this worker and returns a predicate running it.
func (w *worker) leaf(src string, internal bool) (pred, error) {
	prog, err := program(src, w.rule.opts, &w.cur, internal)
	if err != nil {
		return nil, err
	}
	return func(r int) bool {
		w.prepare(r)
		out, err := w.vm.Run(prog, w.env)
		if err != nil {
			if w.rowErr == nil {
				w.rowErr = err
			}
			return false
		}
		b, _ := out.(bool)
		return b
	}, nil
}

// prepare fills the VM environment with row r (once per row).
func (w *worker) prepare(r int) {
	if w.envRow == r {
		return
	}
	w.envRow = r
	w.cur.r = r
	t := w.t
	w.env["id"] = t.ids[r]
	w.env["first_seen"] = timeOf(t.firstSeen[r])
	w.env["last_seen"] = timeOf(t.lastSeen[r])
	clear(w.traits)
	if w.rule.allTraits {
		for k, c := range t.traits {
			if v, ok := c.get(r); ok {
				w.traits[k] = v
			}
		}
	} else {
		for _, c := range w.cols {
			if v, ok := c.get(r); ok {
				w.traits[c.key] = v
			}
		}
	}
	if w.rule.needIdent {
		clear(w.idents)
		// One scratch slice for the row's values, reused from row to row:
		// the VM does not keep them beyond the run. If append moves it,
		// the slices already handed out keep the old array.
		buf := w.identBuf[:0]
		for typ, c := range t.idents {
			start := len(buf)
			if buf = c.appendTo(buf, r); len(buf) > start {
				w.idents[typ] = buf[start:len(buf):len(buf)]
			}
		}
		w.identBuf = buf
	}
}

type chunkResult struct {
	matches    []uint32
	eligible   int
	suppressed int
	errs       []RowError
	errCount   int
}

// forceVM makes scan skip the planner (tests compare both paths).
type scanMode int

const (
	modePlanned scanMode = iota
	modeVM
)

func (r *Rule) scan(ctx context.Context, t *Table, opts EvalOptions, segs map[string]*bitmap) (Result, error) {
	return r.scanMode(ctx, t, opts, segs, modePlanned)
}

func (r *Rule) scanMode(ctx context.Context, t *Table, opts EvalOptions, segs map[string]*bitmap, mode scanMode) (Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = DefaultMaxErrors
	}
	n := t.n
	nChunks := (n + chunkRows - 1) / chunkRows
	workers := max(1, min(opts.Workers, nChunks))
	ws := make([]*worker, workers)
	for i := range ws {
		w, err := newWorker(t, r, opts.Now, segs, mode == modeVM)
		if err != nil {
			return Result{}, err
		}
		ws[i] = w
	}
	var consent bitmap
	if opts.Purpose != "" {
		if b := t.consent[opts.Purpose]; b != nil {
			consent = *b
		}
	}

	results := make([]chunkResult, nChunks)
	var (
		next     atomic.Int64
		mu       sync.Mutex
		done     = make([]bool, nChunks)
		prefix   int
		sample   []int
		sampled  = opts.Sample <= 0 || opts.OnSample == nil
		sampleMu atomic.Bool // set once OnSample has been decided
	)
	sampleMu.Store(sampled)
	finish := func(c int) {
		if sampleMu.Load() {
			return
		}
		mu.Lock()
		done[c] = true
		for prefix < nChunks && done[prefix] && len(sample) < opts.Sample {
			for _, m := range results[prefix].matches {
				if len(sample) == opts.Sample {
					break
				}
				sample = append(sample, int(m))
			}
			prefix++
		}
		var call []int
		if len(sample) >= opts.Sample && !sampled {
			sampled = true
			sampleMu.Store(true)
			call = append([]int(nil), sample...)
		}
		mu.Unlock()
		if call != nil && opts.OnSample != nil {
			opts.OnSample(call)
		}
	}

	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c := int(next.Add(1) - 1)
				if c >= nChunks {
					return
				}
				w.chunk(ctx, c, n, &results[c], consent, opts.MaxErrors)
				finish(c)
			}
		}()
	}
	wg.Wait()

	res := Result{Total: t.live, Plan: ws[0].plan}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	total := 0
	for i := range results {
		total += len(results[i].matches)
	}
	res.Matches = make([]uint32, 0, total)
	for i := range results {
		cr := &results[i]
		res.Matches = append(res.Matches, cr.matches...)
		res.Eligible += cr.eligible
		res.Suppressed += cr.suppressed
		res.ErrorCount += cr.errCount
		for _, e := range cr.errs {
			if len(res.Errors) < opts.MaxErrors {
				res.Errors = append(res.Errors, e)
			}
		}
	}
	res.Count = len(res.Matches)
	if opts.Purpose != "" {
		res.ExcludedNoConsent = res.Count - res.Eligible
	} else {
		res.Eligible = 0
	}
	if opts.Sample > 0 {
		k := min(opts.Sample, res.Count)
		res.Sample = make([]int, k)
		for i := range k {
			res.Sample[i] = int(res.Matches[i])
		}
		mu.Lock()
		call := !sampled
		sampled = true
		mu.Unlock()
		if call && opts.OnSample != nil {
			opts.OnSample(append([]int(nil), res.Sample...))
		}
	}
	return res, nil
}

// cancelCheckRows is how often chunk looks at ctx: on the VM path a row
// costs ~1 µs, so a whole chunk would make cancellation wait ~20 ms.
const cancelCheckRows = 1024

// chunk evaluates rows [c*chunkRows, ...) into out; it stops early, with a
// partial out that Eval discards, when ctx is cancelled.
func (w *worker) chunk(ctx context.Context, c, n int, out *chunkResult, consent bitmap, maxErrors int) {
	t := w.t
	lo := c * chunkRows
	hi := min(n, lo+chunkRows)
	del, sup := t.deleted, t.suppressed
	f := w.pred
	var matches []uint32
	for base := lo; base < hi; base += 64 {
		if (base-lo)%cancelCheckRows == 0 && base > lo && ctx.Err() != nil {
			return
		}
		wi := base >> 6
		var d, s uint64
		if wi < len(del) {
			d = del[wi]
		}
		if wi < len(sup) {
			s = sup[wi]
		}
		live := ^d
		if hi-base < 64 {
			live &= 1<<uint(hi-base) - 1
		}
		out.suppressed += bits.OnesCount64(live & s)
		todo := live &^ s
		for todo != 0 {
			r := base + bits.TrailingZeros64(todo)
			todo &= todo - 1
			ok := f(r)
			if w.rowErr != nil {
				out.errCount++
				if len(out.errs) < maxErrors {
					out.errs = append(out.errs, RowError{ProfileID: t.ids[r], Err: w.rowErr})
				}
				w.rowErr = nil
				continue
			}
			if ok {
				matches = append(matches, uint32(r))
				if consent.get(r) {
					out.eligible++
				}
			}
		}
	}
	out.matches = matches
}
