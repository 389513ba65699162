package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/rules"
	"github.com/loupe-cdp/loupe/store"
)

// The rules snapshot is an in-memory columnar copy of every profile
// (rules.Table) that rule previews, segment membership, the sorted profile
// lists and trait discovery run over.
//
// # Building
//
// It is built on first use by one scan of the 'p' prefix: values are
// decoded and converted on every core and appended in pid order.
//
// # Keeping it current
//
// The writer's flush calls snapshotNoteUnit after each unit's commit has
// been issued, handing over the pids the unit rewrote and the pids it
// merged away. Those pids are only remembered ("pending"); the next reader
// re-reads them from the store and upserts (or deletes, when the record is
// gone) their rows. Re-reading is idempotent, which takes care of the one
// commit that may still be in flight (flush commits asynchronously, at most
// one unit at a time): while a writer holds writeMu, the last noted unit's
// pids stay pending and are read again later. When more pending pids than a
// quarter of the table have piled up, the snapshot is rebuilt instead.
//
// Writes that bypass flush (unmerge, erasure, rectification) must call
// snapshotTouch with the pids they changed, or invalidateSnapshot.
//
// # Locking
//
// snapState.mu guards the table: readers hold RLock for the whole of an
// evaluation (withSnapshot), updates and rebuilds take Lock. Row indexes of
// the table are only meaningful under the lock they were obtained under.
type snapState struct {
	mu    sync.RWMutex
	table *rules.Table
	// Per-row sort keys, aligned with the table's rows (row r of the table
	// is rowPID[r]); Compact keeps them aligned.
	rowPID   []uint64
	rowFirst []int64
	rowLast  []int64
	rowCount []int64
	keys     []string // cached trait keys; nil when unknown

	buildMu sync.Mutex // one build or update at a time

	pendMu   sync.Mutex
	pending  map[uint64]struct{}
	lastUnit []uint64 // pids of the last noted unit: its commit may be in flight
	stale    bool     // rebuild on next use

	previewMu     sync.Mutex
	previewCancel context.CancelFunc
}

// snap returns the engine's snapshot state.
func (e *Engine) snap() *snapState { return e.snapshotState }

func (e *Engine) snapshotNoteUnit(u *unit) {
	pids := make([]uint64, 0, len(u.dirty)+4)
	for pid := range u.dirty {
		pids = append(pids, pid)
	}
	for _, k := range u.dels {
		if len(k) == 9 && k[0] == store.PrefixProfile {
			pids = append(pids, store.Uint64(k, 1))
		}
	}
	s := e.snap()
	s.pendMu.Lock()
	for _, p := range pids {
		s.pending[p] = struct{}{}
	}
	s.lastUnit = pids
	s.pendMu.Unlock()
}

// snapshotTouch marks profiles changed by a write that did not go through
// the ingest writer; their rows are re-read on the next use.
func (e *Engine) snapshotTouch(pids ...uint64) {
	s := e.snap()
	s.pendMu.Lock()
	for _, p := range pids {
		s.pending[p] = struct{}{}
	}
	s.pendMu.Unlock()
}

// invalidateSnapshot drops the snapshot; the next use rebuilds it.
func (e *Engine) invalidateSnapshot() {
	s := e.snap()
	s.pendMu.Lock()
	s.stale = true
	s.pendMu.Unlock()
}

// takePending returns the pids to re-read and whether a rebuild is due.
func (e *Engine) takePending(s *snapState) ([]uint64, bool) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	idle := e.writeMu.TryLock()
	if idle {
		e.writeMu.Unlock()
	}
	stale := s.stale
	s.stale = false
	pids := make([]uint64, 0, len(s.pending))
	for p := range s.pending {
		pids = append(pids, p)
	}
	clear(s.pending)
	if idle {
		s.lastUnit = nil
	} else {
		for _, p := range s.lastUnit {
			s.pending[p] = struct{}{}
		}
	}
	slices.Sort(pids)
	return pids, stale
}

// snapshot returns the current snapshot, building or updating it first.
// The caller must not use the table while anything may update it; use
// withSnapshot for that.
func (e *Engine) snapshot(ctx context.Context) (*rules.Table, error) {
	s := e.snap()
	if err := e.refreshSnapshot(ctx, s); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.table, nil
}

// WarmSnapshot builds the rules snapshot, or brings it up to date, so
// that the first search, filter or preview after it does not wait for a
// build (tens of seconds over a million profiles).
func (e *Engine) WarmSnapshot(ctx context.Context) error {
	return e.refreshSnapshot(ctx, e.snap())
}

// withSnapshot runs fn with the current snapshot under its read lock.
func (e *Engine) withSnapshot(ctx context.Context, fn func(s *snapState) error) error {
	s := e.snap()
	if err := e.refreshSnapshot(ctx, s); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn(s)
}

func (e *Engine) refreshSnapshot(ctx context.Context, s *snapState) error {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	s.mu.RLock()
	built := s.table != nil
	live := 0
	if built {
		live = s.table.Live()
	}
	s.mu.RUnlock()
	pids, stale := e.takePending(s)
	if !built || stale || len(pids) > live/4+10_000 {
		return e.buildSnapshot(ctx, s)
	}
	if len(pids) == 0 {
		return nil
	}
	return e.applyPending(ctx, s, pids)
}

// buildSnapshot scans every profile into a new table and swaps it in.
func (e *Engine) buildSnapshot(ctx context.Context, s *snapState) error {
	type batch struct {
		pids []uint64
		vals [][]byte
		cons [][][]byte // encoded consent records under each pid
		out  []*rules.Profile
		recs []*profileRec
		err  error
		done chan struct{}
	}
	const batchN = 512
	// One read transaction for everything the build reads; the scan
	// goroutine discards it when its iterators are closed.
	txn := e.db.NewTxn(false)
	merged, err := mergedConsentRecords(ctx, txn)
	if err != nil {
		txn.Discard()
		return fmt.Errorf("rules snapshot: %w", err)
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	jobs := make(chan *batch, workers*2)
	ordered := make(chan *batch, workers*4)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	scanErr := make(chan error, 1)
	go func() {
		defer close(ordered)
		defer close(jobs)
		cur := &batch{done: make(chan struct{})}
		send := func() bool {
			select {
			case jobs <- cur:
			case <-ctx.Done():
				return false
			}
			select {
			case ordered <- cur:
			case <-ctx.Done():
				return false
			}
			cur = &batch{done: make(chan struct{})}
			return true
		}
		// Consent records are keyed by pid like profiles, so one pass
		// over both hands each profile the records under its own pid;
		// those under merged-away pids were read before (merged).
		cons := txn.NewCursor([]byte{store.PrefixConsent}, store.IterOptions{})
		err := txn.Iterate([]byte{store.PrefixProfile}, store.IterOptions{}, func(k, v []byte) error {
			if len(k) != 9 {
				return nil
			}
			pid := store.Uint64(k, 1)
			own, err := consentRecordsAt(cons, pid)
			if err != nil {
				return err
			}
			if own == nil {
				own = noConsentRecords
			}
			cur.pids = append(cur.pids, pid)
			cur.vals = append(cur.vals, v)
			cur.cons = append(cur.cons, own)
			if len(cur.pids) == batchN && !send() {
				return ctx.Err()
			}
			return nil
		})
		cons.Close()
		txn.Discard()
		if err == nil && len(cur.pids) > 0 {
			send()
		}
		scanErr <- err
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				b.out = make([]*rules.Profile, len(b.pids))
				b.recs = make([]*profileRec, len(b.pids))
				for i, pid := range b.pids {
					p, err := decodeProfile(pid, b.vals[i])
					if err != nil {
						b.err = err
						break
					}
					b.recs[i] = p
					b.out[i] = e.ruleProfileFrom(p, b.cons[i], merged)
				}
				b.vals, b.cons = nil, nil
				close(b.done)
			}
		}()
	}
	defer wg.Wait()

	tb := rules.NewTableBuilder()
	var rowPID []uint64
	var rowFirst, rowLast, rowCount []int64
	for b := range ordered {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.err != nil {
			cancel()
			return fmt.Errorf("rules snapshot: %w", b.err)
		}
		for i, p := range b.out {
			if err := tb.Append(p); err != nil {
				cancel()
				return fmt.Errorf("rules snapshot: %w", err)
			}
			r := b.recs[i]
			rowPID = append(rowPID, r.PID)
			rowFirst = append(rowFirst, r.First)
			rowLast = append(rowLast, r.Last)
			rowCount = append(rowCount, r.Count)
		}
	}
	if err := <-scanErr; err != nil {
		return fmt.Errorf("rules snapshot: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := tb.Build()
	s.mu.Lock()
	s.table, s.rowPID, s.rowFirst, s.rowLast, s.rowCount, s.keys = t, rowPID, rowFirst, rowLast, rowCount, nil
	s.mu.Unlock()
	return nil
}

// applyPending re-reads pids from the store and upserts or deletes their
// rows.
func (e *Engine) applyPending(ctx context.Context, s *snapState, pids []uint64) error {
	recs := make([]*profileRec, len(pids)) // nil: gone
	err := e.db.View(func(t *store.Txn) error {
		for i, pid := range pids {
			b, err := t.Get(store.PIDKey(store.PrefixProfile, pid))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if recs[i], err = decodeProfile(pid, b); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
	if err != nil {
		// Keep them for the next try.
		e.snapshotTouch(pids...)
		return fmt.Errorf("rules snapshot update: %w", err)
	}
	profiles := make([]*rules.Profile, len(pids))
	for i, r := range recs {
		if r != nil {
			profiles[i] = e.ruleProfile(r)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, pid := range pids {
		if recs[i] == nil {
			s.table.Delete(pidString(pid))
			continue
		}
		if err := s.table.Upsert(profiles[i]); err != nil {
			return fmt.Errorf("rules snapshot update: %w", err)
		}
		r := recs[i]
		s.rowPID = append(s.rowPID, r.PID)
		s.rowFirst = append(s.rowFirst, r.First)
		s.rowLast = append(s.rowLast, r.Last)
		s.rowCount = append(s.rowCount, r.Count)
	}
	s.keys = nil
	if dead := s.table.Len() - s.table.Live(); dead > s.table.Live()/2+4096 {
		s.compact()
	}
	return nil
}

// compact drops deleted rows, keeping the sort keys aligned. Caller holds
// s.mu.
func (s *snapState) compact() {
	t := s.table
	n := t.Live()
	pid := make([]uint64, 0, n)
	first := make([]int64, 0, n)
	last := make([]int64, 0, n)
	count := make([]int64, 0, n)
	for r := 0; r < t.Len(); r++ {
		if t.Deleted(r) {
			continue
		}
		pid = append(pid, s.rowPID[r])
		first = append(first, s.rowFirst[r])
		last = append(last, s.rowLast[r])
		count = append(count, s.rowCount[r])
	}
	s.table = t.Compact()
	s.rowPID, s.rowFirst, s.rowLast, s.rowCount = pid, first, last, count
}

// ruleProfile converts a stored profile to what rules see.
func (e *Engine) ruleProfile(p *profileRec) *rules.Profile {
	return e.ruleProfileFrom(p, nil, nil)
}

// noConsentRecords is a profile's own consent records when it has none;
// unlike nil it says they were read (see consentNowFrom).
var noConsentRecords = [][]byte{}

// ruleProfileFrom is ruleProfile with the consent records already read
// (see consentNowFrom; nil means read them from the store).
func (e *Engine) ruleProfileFrom(p *profileRec, own [][]byte, merged map[uint64][][]byte) *rules.Profile {
	rp := &rules.Profile{
		ID:        pidString(p.PID),
		FirstSeen: unixTime(p.First),
		LastSeen:  unixTime(p.Last),
	}
	if len(p.Traits) > 0 {
		rp.Traits = make(map[string]any, len(p.Traits))
		for k, tr := range p.Traits {
			rp.Traits[k] = tr.V
		}
	}
	if len(p.IDs) > 0 {
		rp.Identities = make(map[string][]string, 4)
		for _, id := range p.IDs {
			rp.Identities[id.T] = append(rp.Identities[id.T], id.V)
		}
	}
	if len(p.Events) > 0 {
		rp.Events = make(map[string]rules.EventStats, len(p.Events))
		for name, er := range p.Events {
			st := rules.EventStats{Count: er.N, First: unixTime(er.F), Last: unixTime(er.L), Sums: er.S}
			if len(er.R) > 0 {
				st.Recent = make([]rules.Occurrence, len(er.R))
				for i, sec := range er.R {
					st.Recent[i].Unix = sec
					for prop, vals := range er.RV {
						if i < len(vals) && vals[i] != 0 {
							if st.Recent[i].Values == nil {
								st.Recent[i].Values = make(map[string]float64, len(er.RV))
							}
							st.Recent[i].Values[prop] = vals[i]
						}
					}
				}
			}
			rp.Events[name] = st
		}
	}
	rp.Consent = e.consentNowFrom(p, own, merged)
	return rp
}

// snapshotIndex serves sorted and filtered profile lists from the rules
// snapshot. A rule that does not compile is returned as *rules.Error.
func (e *Engine) snapshotIndex(ctx context.Context, q ProfileQuery) (*ProfileIndex, error) {
	var rule *rules.Rule
	if q.Rule != "" {
		var err error
		if rule, err = rules.Compile(q.Rule, rules.CompileOptions{}); err != nil {
			return nil, err
		}
	}
	var ix *ProfileIndex
	err := e.withSnapshot(ctx, func(s *snapState) error {
		t := s.table
		var rows []int
		if rule != nil {
			res, err := rule.Eval(ctx, t, rules.EvalOptions{Now: e.now(), Segments: e.segmentResolver(ctx)})
			if err != nil {
				return err
			}
			rows = make([]int, len(res.Matches))
			for i, m := range res.Matches {
				rows[i] = int(m)
			}
		} else {
			rows = make([]int, 0, t.Live())
			for r := 0; r < t.Len(); r++ {
				if !t.Deleted(r) {
					rows = append(rows, r)
				}
			}
		}
		var key []int64
		switch q.Sort {
		case SortFirstSeen:
			key = s.rowFirst
		case SortEvents:
			key = s.rowCount
		default:
			key = s.rowLast
		}
		// Highest key first; ties newest pid first.
		slices.SortFunc(rows, func(a, b int) int {
			if c := cmp.Compare(key[b], key[a]); c != 0 {
				return c
			}
			return cmp.Compare(s.rowPID[b], s.rowPID[a])
		})
		pids := make([]uint64, len(rows))
		for i, r := range rows {
			pids[i] = s.rowPID[r]
		}
		ix = &ProfileIndex{pids: pids, total: t.Live()}
		return nil
	})
	return ix, err
}

// summaryAt is a list row for table row r, read from the snapshot alone.
// Caller holds s.mu.
func (e *Engine) summaryAt(s *snapState, r int) ProfileSummary {
	t := s.table
	// Strings from the table point into its arenas: summaries are copied
	// out so that a list held by the workbench does not keep an old
	// snapshot's arenas alive after a rebuild.
	ids := t.Identities(r)
	one := func(typ string) string {
		if vs := ids[typ]; len(vs) > 0 {
			return strings.Clone(vs[0])
		}
		return ""
	}
	sum := ProfileSummary{
		ID:         pidString(s.rowPID[r]),
		Email:      one(identity.Email),
		UserID:     one(identity.UserID),
		Phone:      one(identity.Phone),
		EventCount: s.rowCount[r],
		FirstSeen:  unixTime(s.rowFirst[r]),
		LastSeen:   unixTime(s.rowLast[r]),
	}
	for _, k := range e.cfg.Profiles.KeyTraits {
		if v, ok := t.Trait(r, k); ok {
			if sum.Traits == nil {
				sum.Traits = map[string]any{}
			}
			if str, ok := v.(string); ok {
				v = strings.Clone(str)
			}
			sum.Traits[k] = v
		}
	}
	return sum
}

// ValueCount is one value of a trait and how many profiles hold it.
type ValueCount struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// TraitFrequency counts the values of trait over the profiles rule matches
// (all profiles when rule is ""), most frequent first, ties by value.
// Profiles without the trait are not counted.
func (e *Engine) TraitFrequency(ctx context.Context, trait, rule string) ([]ValueCount, error) {
	var r *rules.Rule
	if rule != "" {
		var err error
		if r, err = rules.Compile(rule, rules.CompileOptions{}); err != nil {
			return nil, err
		}
	}
	counts := map[string]int{}
	err := e.withSnapshot(ctx, func(s *snapState) error {
		t := s.table
		add := func(row int) {
			if v, ok := t.Trait(row, trait); ok {
				k := valueText(v)
				if n, seen := counts[k]; seen {
					counts[k] = n + 1
				} else {
					counts[strings.Clone(k)] = 1 // not an alias of the table's arena
				}
			}
		}
		if r != nil {
			res, err := r.Eval(ctx, t, rules.EvalOptions{Now: e.now(), Segments: e.segmentResolver(ctx)})
			if err != nil {
				return err
			}
			for _, m := range res.Matches {
				add(int(m))
			}
			return nil
		}
		for row := 0; row < t.Len(); row++ {
			if !t.Deleted(row) {
				add(row)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]ValueCount, 0, len(counts))
	for v, n := range counts {
		out = append(out, ValueCount{v, n})
	}
	slices.SortFunc(out, func(a, b ValueCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Value, b.Value)
	})
	return out, nil
}

func valueText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// TraitKeys returns the trait keys present in the snapshot, sorted (nil if
// the snapshot cannot be built).
func (e *Engine) TraitKeys() []string {
	s := e.snap()
	if err := e.refreshSnapshot(context.Background(), s); err != nil {
		e.log.Warn("trait keys", "err", err)
		return nil
	}
	s.mu.RLock()
	if s.keys != nil {
		defer s.mu.RUnlock()
		return slices.Clone(s.keys)
	}
	infos := s.table.TraitKeys()
	s.mu.RUnlock()
	keys := make([]string, len(infos))
	for i, in := range infos {
		keys[i] = in.Key
	}
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
	return slices.Clone(keys)
}

// TraitInfo describes one discovered trait key.
type TraitInfo struct {
	Key   string       `json:"key"`
	Types []TypeCount  `json:"types"`
	Count int          `json:"count"` // profiles with the trait set
	Top   []ValueCount `json:"top"`   // up to ten most frequent scalar values
}

// TypeCount is how many profiles hold a trait with a value of a type.
type TypeCount struct {
	Type  string `json:"type"`
	Count int    `json:"count"`
}

// Traits describes every trait key in the profiles: its value types, how
// many profiles have it, and its most frequent values.
func (e *Engine) Traits(ctx context.Context) ([]TraitInfo, error) {
	var out []TraitInfo
	err := e.withSnapshot(ctx, func(s *snapState) error {
		for _, in := range s.table.TraitKeys() {
			ti := TraitInfo{Key: in.Key, Count: in.Count, Types: []TypeCount{}, Top: []ValueCount{}}
			for i, typ := range in.Types {
				ti.Types = append(ti.Types, TypeCount{typ, in.TypeCounts[i]})
			}
			for _, vc := range in.Top {
				ti.Top = append(ti.Top, ValueCount{valueText(vc.Value), vc.Count})
			}
			out = append(out, ti)
		}
		return nil
	})
	return out, err
}
