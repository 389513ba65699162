package rules

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"time"
	"unsafe"
)

// Table is an in-memory columnar snapshot of profiles, the input of
// Rule.Eval.
//
// Layout: one row per profile, in append order. IDs are a string slice plus
// an ID index; first/last seen are int64 Unix nanoseconds; each trait key is
// one typed column (dictionary-encoded strings with uint32 codes, float64,
// int64 or bool values with a presence bitmap; a key whose values have more
// than one type falls back to an []any column). Each event name is a sparse
// column: a presence bitmap over rows with a rank index (rows set in the
// words before each 64-row word), and dense arrays over the rows that have
// the event, in row order: all-time count (uint32), first/last (Unix ns),
// sums per numeric property, and the retained occurrences in CSR layout
// (offsets into one unix []int64 array and one []float64 array per numeric
// property), which makes windows exact (see the package doc). Identities are
// CSR lists per identifier type. String dictionaries and identity values are
// string arenas: the bytes of all values back to back in one []byte, plus
// uint32 end offsets. Consent, suppression and deletion are bitmaps. Columns
// grow lazily: a row beyond a column's length simply has no value there.
//
// String values returned by Trait, Traits, Identities and Row point into
// the arenas (TraitKeys returns copies): they stay valid and unchanged for
// as long as they are referenced, but each one keeps its arena's buffer (the
// bytes of every value of that column at the time) alive. Clone a string
// that is kept long after the table is dropped or rebuilt.
//
// Size limits: a table holds fewer than 2^31 rows, and each string arena,
// identity list and occurrence array fewer than 2^32 bytes or entries;
// Append and Upsert return an error wrapping ErrTableFull beyond that.
//
// Concurrency: Table is not synchronized internally. Any number of readers
// (Eval, Row, ID, Trait, TraitKeys, ...) may run at the same time, but Upsert,
// Delete and Compact must not run concurrently with anything else. The
// engine guards each Table with a sync.RWMutex it owns: RLock around
// evaluation and accessors, Lock around Upsert/Delete. Callbacks invoked by
// Eval (OnSample) run while the caller holds its read lock; they may read the
// table but must not try to take the write lock.
type Table struct {
	n          int // rows, including deleted ones
	live       int // rows not deleted
	ids        []string
	index      map[string]int32
	firstSeen  []int64 // Unix ns, zeroNs for the zero time
	lastSeen   []int64
	suppressed bitmap
	deleted    bitmap
	traits     map[string]*traitCol
	events     map[string]*eventCol
	idents     map[string]*identCol
	consent    map[string]*bitmap
	// used bounds every uint32 offset or code in use in any column: the
	// sum over all appended rows of profileUse. While used plus a new
	// profile's use stays within offsetLimit, no column can overflow and
	// room skips the per-column check.
	used uint64
}

// zeroNs encodes the zero time.Time in int64 time columns.
const zeroNs = math.MinInt64

func nsOf(t time.Time) int64 {
	if t.IsZero() {
		return zeroNs
	}
	return t.UnixNano()
}

func timeOf(ns int64) time.Time {
	if ns == zeroNs {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// bitmap is a growable bit set.
type bitmap []uint64

func (b bitmap) get(i int) bool {
	w := i >> 6
	return w < len(b) && b[w]&(1<<(uint(i)&63)) != 0
}

func (b *bitmap) set(i int, v bool) {
	w := i >> 6
	if w >= len(*b) {
		if !v {
			return
		}
		*b = growTo(*b, w+1)
	}
	if v {
		(*b)[w] |= 1 << (uint(i) & 63)
	} else {
		(*b)[w] &^= 1 << (uint(i) & 63)
	}
}

// growTo extends s with zero values to length n (never shrinks). Capacity
// grows like append's (by about a quarter for large slices), so a column
// trimmed by Build does not double on the first Upsert.
func growTo[T any](s []T, n int) []T {
	if len(s) >= n {
		return s
	}
	old := len(s)
	s = slices.Grow(s, n-old)[:n]
	clear(s[old:])
	return s
}

// clip returns s without its spare capacity, copying it, unless that spare
// is under 1/64 of its length. Build and Compact call it once per column;
// columns grown by append keep up to a fifth of their size (a half for
// small ones) as spare capacity otherwise.
func clip[T any](s []T) []T {
	if cap(s)-len(s) <= len(s)/64 {
		return s
	}
	if len(s) == 0 {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

// offsetLimit is the largest offset, code or entry count a uint32 column
// field can hold (a variable so tests can lower it).
var offsetLimit uint64 = math.MaxUint32

// maxRows is the largest row count (row indexes are int32 in the ID index).
const maxRows = math.MaxInt32

// ErrTableFull is returned (wrapped) by TableBuilder.Append and Table.Upsert
// when the profile does not fit: the table already has the most rows it can
// hold, or a column would need an offset beyond its uint32 range (4 GiB of
// string bytes in one dictionary or identity type, or 2^32 values or
// retained occurrences). The table is left unchanged.
var ErrTableFull = errors.New("rules: table full")

// strArena stores strings back to back in one byte slice; string k is
// buf[ends[k-1]:ends[k]] (from 0 for k == 0). It costs 4 bytes per string
// plus the bytes, where a []string costs a 16-byte header plus a separately
// allocated, size-class-rounded copy per string.
//
// at hands out strings that alias buf (unsafe.String). That is safe because
// bytes are never modified once appended: add only appends, and append
// writes beyond len(buf) (into spare capacity nobody has been handed) or
// copies to a new array, leaving the old one, still referenced by the
// strings handed out before, untouched; clip and Compact also copy rather
// than rewrite. A handed-out string keeps the buffer it points into alive.
type strArena struct {
	buf  []byte
	ends []uint32
}

func (a *strArena) len() int { return len(a.ends) }

// at returns string k.
func (a *strArena) at(k int) string {
	var lo uint32
	if k > 0 {
		lo = a.ends[k-1]
	}
	hi := a.ends[k]
	if hi == lo {
		return ""
	}
	return unsafe.String(&a.buf[lo], int(hi-lo))
}

// fits reports whether strings of n bytes in total, k of them, can be
// added without overflowing the uint32 offsets.
func (a *strArena) fits(n, k int) bool {
	return uint64(len(a.buf))+uint64(n) <= offsetLimit && uint64(len(a.ends))+uint64(k) <= offsetLimit
}

// add appends s; the caller has checked fits.
func (a *strArena) add(s string) {
	a.buf = append(a.buf, s...)
	a.ends = append(a.ends, uint32(len(a.buf)))
}

func (a *strArena) clip() {
	a.buf, a.ends = clip(a.buf), clip(a.ends)
}

func (a *strArena) bytes() int64 { return int64(cap(a.buf)) + int64(cap(a.ends))*4 }

type colKind uint8

const (
	kindNone colKind = iota
	kindString
	kindFloat
	kindInt
	kindBool
	kindAny
)

var kindNames = [...]string{"none", "string", "float", "int", "bool", "any"}

// traitCol is one trait key's column.
type traitCol struct {
	key     string
	kind    colKind
	present bitmap
	codes   []uint32 // kindString: index into dict
	dict    strArena
	dictIdx map[string]uint32 // keys are clones, not arena strings: they must not pin an old arena buffer
	f       []float64         // kindFloat
	i       []int64           // kindInt
	b       bitmap            // kindBool
	a       []any             // kindAny
}

// normalize maps a trait value to its stored form and kind.
func normalize(v any) (any, colKind) {
	switch x := v.(type) {
	case nil:
		return nil, kindNone
	case string:
		return x, kindString
	case float64:
		return x, kindFloat
	case float32:
		return float64(x), kindFloat
	case int64:
		return x, kindInt
	case int:
		return int64(x), kindInt
	case int32:
		return int64(x), kindInt
	case bool:
		return x, kindBool
	default:
		return v, kindAny
	}
}

func (c *traitCol) code(s string) uint32 {
	if id, ok := c.dictIdx[s]; ok {
		return id
	}
	id := uint32(c.dict.len())
	c.dict.add(s)
	if c.dictIdx != nil {
		c.dictIdx[strings.Clone(s)] = id
	}
	return id
}

// highCardinality is the share of rows above which a string column's
// dictionary keeps no lookup map once built: for near-unique values (names,
// emails, dates) the map costs ~30–50 bytes a value and deduplicates
// almost nothing, and evaluation never uses it (predicates scan the
// dictionary once per compile). Later upserts append their values.
const highCardinality = 4

// minRowsToDrop keeps small tables deduplicating: a table that starts small
// and grows by upserts must not grow a dictionary entry per upsert for a
// column with a handful of values.
const minRowsToDrop = 10_000

func (c *traitCol) dropLookupIfUnique(rows int) {
	if c.kind == kindString && rows >= minRowsToDrop && c.dict.len()*highCardinality > rows {
		c.dictIdx = nil
	}
}

func (c *traitCol) clip() {
	c.present, c.codes, c.f, c.i, c.b, c.a = clip(c.present), clip(c.codes), clip(c.f), clip(c.i), clip(c.b), clip(c.a)
	c.dict.clip()
}

func (c *traitCol) set(r int, v any) {
	v, k := normalize(v)
	if k == kindNone {
		c.present.set(r, false)
		if c.kind == kindAny && r < len(c.a) {
			c.a[r] = nil
		}
		return
	}
	if c.kind == kindNone {
		c.kind = k
		if k == kindString {
			c.dictIdx = map[string]uint32{}
		}
	} else if c.kind != k && c.kind != kindAny {
		c.toAny()
	}
	c.present.set(r, true)
	switch c.kind {
	case kindString:
		c.codes = growTo(c.codes, r+1)
		c.codes[r] = c.code(v.(string))
	case kindFloat:
		c.f = growTo(c.f, r+1)
		c.f[r] = v.(float64)
	case kindInt:
		c.i = growTo(c.i, r+1)
		c.i[r] = v.(int64)
	case kindBool:
		c.b.set(r, v.(bool))
	case kindAny:
		c.a = growTo(c.a, r+1)
		c.a[r] = v
	}
}

// toAny converts a typed column to an []any column. Strings in it still
// point into the old dictionary arena, which they keep alive.
func (c *traitCol) toAny() {
	n := len(c.present) * 64
	a := make([]any, 0, n)
	for r := 0; r < n; r++ {
		v, _ := c.get(r)
		a = append(a, v)
	}
	for len(a) > 0 && a[len(a)-1] == nil {
		a = a[:len(a)-1]
	}
	c.kind, c.a = kindAny, a
	c.codes, c.dict, c.dictIdx, c.f, c.i, c.b = nil, strArena{}, nil, nil, nil, nil
}

// get returns row r's value; nil, false when absent.
func (c *traitCol) get(r int) (any, bool) {
	if !c.present.get(r) {
		return nil, false
	}
	switch c.kind {
	case kindString:
		return c.dict.at(int(c.codes[r])), true
	case kindFloat:
		return c.f[r], true
	case kindInt:
		return c.i[r], true
	case kindBool:
		return c.b.get(r), true
	case kindAny:
		if r < len(c.a) {
			return c.a[r], c.a[r] != nil
		}
	}
	return nil, false
}

// rank returns the dense position of row r in a sparse column (rows set in
// has before r) and whether r is set. cum[w] is the number of rows set in
// has[:w]. Absent rows, the common case, cost one word load.
func rank(has bitmap, cum []uint32, r int) (int, bool) {
	w := r >> 6
	if w >= len(has) {
		return 0, false
	}
	word, bit := has[w], uint64(1)<<(uint(r)&63)
	if word&bit == 0 {
		return 0, false
	}
	return int(cum[w]) + bits.OnesCount64(word&(bit-1)), true
}

// wideCount in eventCol.count means the count does not fit in [0, 2^32-1):
// it is kept in eventCol.wide.
const wideCount = math.MaxUint32

// eventCol is one event name's columns: sparse over rows (has, cum), dense
// over the rows that have the event (positions from rank).
type eventCol struct {
	name    string
	has     bitmap   // rows with stats for this event (EventStats given, even empty)
	cum     []uint32 // cum[w]: rows set in has[:w]
	count   []uint32 // [dense] all-time count, or wideCount
	wide    map[uint32]int64
	first   []int64  // [dense] Unix ns, zeroNs if unknown
	last    []int64  // [dense]
	offs    []uint32 // CSR: dense position d's occurrences are unix[offs[d]:offs[d+1]]
	unix    []int64  // occurrence times, seconds, oldest first per row
	props   []string
	propIdx map[string]int
	sums    [][]float64 // [prop][dense] all-time sums; shorter than count after the last row with the property
	vals    [][]float64 // [prop][occurrence]
}

func (e *eventCol) prop(name string) int {
	if p, ok := e.propIdx[name]; ok {
		return p
	}
	p := len(e.props)
	e.props = append(e.props, name)
	e.propIdx[name] = p
	e.sums = append(e.sums, nil)
	e.vals = append(e.vals, nil)
	return p
}

// set records row r's stats. r must be above every row set before (rows
// are only appended), so r's dense position is the next one.
func (e *eventCol) set(r int, s EventStats) {
	d := len(e.count)
	for w := r >> 6; len(e.has) <= w; {
		e.has = append(e.has, 0)
		e.cum = append(e.cum, uint32(d))
	}
	e.has[r>>6] |= 1 << (uint(r) & 63)
	if s.Count >= 0 && s.Count < wideCount {
		e.count = append(e.count, uint32(s.Count))
	} else {
		e.count = append(e.count, wideCount)
		if e.wide == nil {
			e.wide = map[uint32]int64{}
		}
		e.wide[uint32(d)] = s.Count
	}
	e.first = append(e.first, nsOf(s.First))
	e.last = append(e.last, nsOf(s.Last))
	for name, v := range s.Sums {
		p := e.prop(name)
		e.sums[p] = growTo(e.sums[p], d+1)
		e.sums[p][d] = v
	}
	if len(e.offs) == 0 {
		e.offs = append(e.offs, 0)
	}
	for _, o := range s.Recent {
		for name, v := range o.Values {
			p := e.prop(name)
			e.vals[p] = growTo(e.vals[p], len(e.unix)+1)
			e.vals[p][len(e.unix)] = v
		}
		e.unix = append(e.unix, o.Unix)
	}
	e.offs = append(e.offs, uint32(len(e.unix)))
}

func (e *eventCol) dense(r int) (int, bool) { return rank(e.has, e.cum, r) }

// countAt returns the all-time count at dense position d.
func (e *eventCol) countAt(d int) int64 {
	if c := e.count[d]; c != wideCount {
		return int64(c)
	}
	return e.wide[uint32(d)]
}

// occ returns the bounds of the occurrences at dense position d.
func (e *eventCol) occ(d int) (int, int) {
	return int(e.offs[d]), int(e.offs[d+1])
}

func (e *eventCol) cnt(r int) int64 {
	if d, ok := e.dense(r); ok {
		return e.countAt(d)
	}
	return 0
}

// windowCount counts row r's events with time > cutoff (cutoffNs in Unix
// ns, cutoffSec = floor(cutoffNs/1e9)). See the package doc for exactness.
func (e *eventCol) windowCount(r int, cutoffNs, cutoffSec int64) int64 {
	d, ok := e.dense(r)
	if !ok || e.count[d] == 0 {
		return 0
	}
	if f := e.first[d]; f != zeroNs && f > cutoffNs {
		return e.countAt(d)
	}
	lo, hi := e.occ(d)
	k := hi
	for k > lo && e.unix[k-1] > cutoffSec {
		k--
	}
	return int64(hi - k)
}

// sum returns row r's sum of property p (-1: unknown, 0) all time, or
// within the window when hasWindow.
func (e *eventCol) sum(r, p int, hasWindow bool, cutoffNs, cutoffSec int64) float64 {
	if p < 0 {
		return 0
	}
	d, ok := e.dense(r)
	if !ok || e.count[d] == 0 {
		return 0
	}
	if !hasWindow || (e.first[d] != zeroNs && e.first[d] > cutoffNs) {
		if s := e.sums[p]; d < len(s) {
			return s[d]
		}
		return 0
	}
	lo, hi := e.occ(d)
	vals := e.vals[p]
	var total float64
	for k := hi - 1; k >= lo && e.unix[k] > cutoffSec; k-- {
		if k < len(vals) {
			total += vals[k]
		}
	}
	return total
}

func (e *eventCol) lastNs(r int) int64 {
	if d, ok := e.dense(r); ok && e.countAt(d) > 0 {
		return e.last[d]
	}
	return zeroNs
}

func (e *eventCol) clip() {
	e.has, e.cum, e.count, e.first, e.last, e.offs, e.unix = clip(e.has), clip(e.cum), clip(e.count), clip(e.first), clip(e.last), clip(e.offs), clip(e.unix)
	for p := range e.props {
		e.sums[p], e.vals[p] = clip(e.sums[p]), clip(e.vals[p])
	}
}

// identCol is one identifier type's values in CSR layout: row r's values
// are vals entries offs[r] to offs[r+1].
type identCol struct {
	offs []uint32
	vals strArena
}

func (c *identCol) set(r int, vs []string) {
	for len(c.offs) < r+1 {
		c.offs = append(c.offs, uint32(c.vals.len()))
	}
	for _, v := range vs {
		c.vals.add(v)
	}
	c.offs = append(c.offs, uint32(c.vals.len()))
}

// appendTo appends row r's values to dst.
func (c *identCol) appendTo(dst []string, r int) []string {
	if r+1 >= len(c.offs) {
		return dst
	}
	for k := c.offs[r]; k < c.offs[r+1]; k++ {
		dst = append(dst, c.vals.at(int(k)))
	}
	return dst
}

// get returns row r's values as a new slice (nil when none).
func (c *identCol) get(r int) []string {
	if r+1 >= len(c.offs) || c.offs[r] == c.offs[r+1] {
		return nil
	}
	return c.appendTo(make([]string, 0, c.offs[r+1]-c.offs[r]), r)
}

// TableBuilder builds a Table from profiles.
type TableBuilder struct {
	t *Table
}

// NewTableBuilder returns an empty builder.
func NewTableBuilder() *TableBuilder {
	return &TableBuilder{t: newTable()}
}

func newTable() *Table {
	return &Table{
		index:   map[string]int32{},
		traits:  map[string]*traitCol{},
		events:  map[string]*eventCol{},
		idents:  map[string]*identCol{},
		consent: map[string]*bitmap{},
	}
}

// ErrDuplicateID is returned by TableBuilder.Append for an ID already added.
var ErrDuplicateID = errors.New("rules: duplicate profile ID")

// Append adds p as the next row. The profile is copied; p may be reused.
func (b *TableBuilder) Append(p *Profile) error {
	if p.ID == "" {
		return errors.New("rules: profile without ID")
	}
	if _, ok := b.t.index[p.ID]; ok {
		return fmt.Errorf("%w %q", ErrDuplicateID, p.ID)
	}
	return b.t.appendRow(p)
}

// Build returns the table. The builder must not be used afterwards.
func (b *TableBuilder) Build() *Table {
	t := b.t
	b.t = nil
	t.finish()
	return t
}

// finish drops the lookup maps of near-unique dictionaries and the spare
// capacity of every column.
func (t *Table) finish() {
	t.ids, t.firstSeen, t.lastSeen = clip(t.ids), clip(t.firstSeen), clip(t.lastSeen)
	t.suppressed, t.deleted = clip(t.suppressed), clip(t.deleted)
	for _, c := range t.traits {
		c.dropLookupIfUnique(t.n)
		c.clip()
	}
	for _, e := range t.events {
		e.clip()
	}
	for _, c := range t.idents {
		c.offs = clip(c.offs)
		c.vals.clip()
	}
	for _, b := range t.consent {
		*b = clip(*b)
	}
}

// Upsert replaces the profile with p.ID, or adds it. The new version is
// appended as a new row and the old row is marked deleted, so existing row
// indexes stay valid (they keep pointing at the old, now deleted, version).
// When p does not fit (ErrTableFull) the table is left unchanged.
// See Table for the locking contract.
func (t *Table) Upsert(p *Profile) error {
	if p.ID == "" {
		return errors.New("rules: profile without ID")
	}
	use, err := t.room(p)
	if err != nil {
		return err
	}
	t.Delete(p.ID)
	t.add(p, use)
	return nil
}

// Delete removes the profile with the given ID; it reports whether it was
// present. The row stays allocated (marked deleted) until Compact.
func (t *Table) Delete(id string) bool {
	r, ok := t.index[id]
	if !ok {
		return false
	}
	delete(t.index, id)
	t.deleted.set(int(r), true)
	t.live--
	return true
}

// Compact returns a new table holding only the live rows, in order. Row
// indexes change. Like Build, it leaves no lookup map on near-unique
// dictionaries and no spare capacity.
func (t *Table) Compact() *Table {
	nt := newTable()
	for r := 0; r < t.n; r++ {
		if !t.deleted.get(r) {
			if err := nt.appendRow(t.Row(r)); err != nil {
				// Each column of nt holds a subset of the values of the
				// same column of t, which fit.
				panic(fmt.Sprintf("rules: Compact: %v", err))
			}
		}
	}
	nt.finish()
	return nt
}

// profileUse bounds how much p adds to any uint32 offset or code of a
// column: its string bytes and string count (dictionaries, identities) plus
// its retained occurrences.
func profileUse(p *Profile) uint64 {
	var n uint64
	for _, v := range p.Traits {
		if s, ok := v.(string); ok {
			n += uint64(len(s)) + 1
		}
	}
	for _, vs := range p.Identities {
		for _, v := range vs {
			n += uint64(len(v)) + 1
		}
	}
	for _, s := range p.Events {
		n += uint64(len(s.Recent))
	}
	return n
}

// room checks that p fits in t (see ErrTableFull) and returns its
// profileUse.
func (t *Table) room(p *Profile) (uint64, error) {
	if t.n >= maxRows {
		return 0, fmt.Errorf("%w: profile %q: the table already has %d rows", ErrTableFull, p.ID, t.n)
	}
	use := profileUse(p)
	if t.used+use <= offsetLimit {
		return use, nil
	}
	// Near the limit: check each column p adds to.
	full := func(what, name string) error {
		return fmt.Errorf("%w: profile %q: %s %q would exceed %d bytes or values (uint32 offsets); compact or shard the snapshot", ErrTableFull, p.ID, what, name, offsetLimit)
	}
	for k, v := range p.Traits {
		s, ok := v.(string)
		if !ok {
			continue
		}
		c := t.traits[k]
		if c == nil || c.kind != kindString {
			c = &traitCol{} // a new dictionary, or none at all (kindAny)
		}
		if !c.dict.fits(len(s), 1) {
			return 0, full("trait", k)
		}
	}
	for typ, vs := range p.Identities {
		c := t.idents[typ]
		if c == nil {
			c = &identCol{}
		}
		n := 0
		for _, v := range vs {
			n += len(v)
		}
		if !c.vals.fits(n, len(vs)) {
			return 0, full("identity type", typ)
		}
	}
	for name, s := range p.Events {
		e := t.events[name]
		if e == nil {
			e = &eventCol{}
		}
		if uint64(len(e.unix))+uint64(len(s.Recent)) > offsetLimit {
			return 0, full("event", name)
		}
	}
	return use, nil
}

// appendRow appends p as a new row, or returns an error wrapping
// ErrTableFull and leaves t unchanged.
func (t *Table) appendRow(p *Profile) error {
	use, err := t.room(p)
	if err != nil {
		return err
	}
	t.add(p, use)
	return nil
}

// add appends p, which room has accepted with its use.
func (t *Table) add(p *Profile, use uint64) {
	t.used += use
	r := t.n
	t.n++
	t.live++
	t.ids = append(t.ids, p.ID)
	t.index[p.ID] = int32(r)
	t.firstSeen = append(t.firstSeen, nsOf(p.FirstSeen))
	t.lastSeen = append(t.lastSeen, nsOf(p.LastSeen))
	t.suppressed.set(r, p.Suppressed)
	for k, v := range p.Traits {
		if v == nil {
			continue
		}
		c := t.traits[k]
		if c == nil {
			c = &traitCol{key: k}
			t.traits[k] = c
		}
		c.set(r, v)
	}
	for name, s := range p.Events {
		e := t.events[name]
		if e == nil {
			e = &eventCol{name: name, propIdx: map[string]int{}}
			t.events[name] = e
		}
		e.set(r, s)
	}
	for typ, vs := range p.Identities {
		if len(vs) == 0 {
			continue
		}
		c := t.idents[typ]
		if c == nil {
			c = &identCol{}
			t.idents[typ] = c
		}
		c.set(r, vs)
	}
	for purpose, ok := range p.Consent {
		if !ok {
			continue
		}
		b := t.consent[purpose]
		if b == nil {
			b = &bitmap{}
			t.consent[purpose] = b
		}
		b.set(r, true)
	}
}

// Len returns the number of rows, including deleted ones; row indexes run
// from 0 to Len()-1.
func (t *Table) Len() int { return t.n }

// Live returns the number of rows not deleted.
func (t *Table) Live() int { return t.live }

// ID returns row i's profile ID.
func (t *Table) ID(i int) string { return t.ids[i] }

// Lookup returns the live row holding id.
func (t *Table) Lookup(id string) (int, bool) {
	r, ok := t.index[id]
	return int(r), ok
}

// Deleted reports whether row i was deleted (or replaced by Upsert).
func (t *Table) Deleted(i int) bool { return t.deleted.get(i) }

// Suppressed reports whether row i is a suppressed subject.
func (t *Table) Suppressed(i int) bool { return t.suppressed.get(i) }

// Trait returns row i's value of trait key.
func (t *Table) Trait(i int, key string) (any, bool) {
	c := t.traits[key]
	if c == nil {
		return nil, false
	}
	return c.get(i)
}

// Traits returns row i's traits as a new map.
func (t *Table) Traits(i int) map[string]any {
	m := map[string]any{}
	for k, c := range t.traits {
		if v, ok := c.get(i); ok {
			m[k] = v
		}
	}
	return m
}

// Identities returns row i's identities as a new map of new slices (the
// strings point into the table's storage, see Table).
func (t *Table) Identities(i int) map[string][]string {
	m := map[string][]string{}
	for typ, c := range t.idents {
		if vs := c.get(i); len(vs) > 0 {
			m[typ] = vs
		}
	}
	return m
}

// IdentitiesWithPrefix calls fn with the row and value of every
// identifier of type typ that starts with prefix, on rows not deleted, in
// row order, until fn returns false. The value points into the table's
// storage (see Table).
func (t *Table) IdentitiesWithPrefix(typ, prefix string, fn func(row int, value string) bool) {
	c := t.idents[typ]
	if c == nil {
		return
	}
	for r := 0; r+1 < len(c.offs); r++ {
		if c.offs[r] == c.offs[r+1] || t.deleted.get(r) {
			continue
		}
		for k := c.offs[r]; k < c.offs[r+1]; k++ {
			if v := c.vals.at(int(k)); strings.HasPrefix(v, prefix) && !fn(r, v) {
				return
			}
		}
	}
}

// Row reconstructs row i as a Profile, for sample display and export.
func (t *Table) Row(i int) *Profile {
	p := &Profile{
		ID:         t.ids[i],
		Traits:     t.Traits(i),
		Identities: t.Identities(i),
		FirstSeen:  timeOf(t.firstSeen[i]),
		LastSeen:   timeOf(t.lastSeen[i]),
		Events:     map[string]EventStats{},
		Consent:    map[string]bool{},
		Suppressed: t.suppressed.get(i),
	}
	for name, e := range t.events {
		d, ok := e.dense(i)
		if !ok {
			continue
		}
		s := EventStats{Count: e.countAt(d), First: timeOf(e.first[d]), Last: timeOf(e.last[d])}
		for p, prop := range e.props {
			if d < len(e.sums[p]) {
				if s.Sums == nil {
					s.Sums = map[string]float64{}
				}
				s.Sums[prop] = e.sums[p][d]
			}
		}
		lo, hi := e.occ(d)
		for k := lo; k < hi; k++ {
			o := Occurrence{Unix: e.unix[k]}
			for p, prop := range e.props {
				if k < len(e.vals[p]) {
					if o.Values == nil {
						o.Values = map[string]float64{}
					}
					o.Values[prop] = e.vals[p][k]
				}
			}
			s.Recent = append(s.Recent, o)
		}
		if s.Count == 0 && hi == lo {
			continue
		}
		p.Events[name] = s
	}
	for purpose, b := range t.consent {
		if b.get(i) {
			p.Consent[purpose] = true
		}
	}
	return p
}

// EventNames returns the event names in the table, sorted.
func (t *Table) EventNames() []string { return sortedKeys(t.events) }

// Purposes returns the consent purposes seen in the table, sorted.
func (t *Table) Purposes() []string { return sortedKeys(t.consent) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Bytes estimates the memory held by the table's columns (slice capacities,
// string bytes, and maps at ~48 bytes per entry plus the key).
func (t *Table) Bytes() int64 {
	var n int64
	n += int64(cap(t.ids)) * 16
	for _, s := range t.ids {
		n += int64(len(s))
	}
	n += int64(len(t.index)) * (16 + 4 + 28) // key header, value, map overhead; key bytes shared with ids
	n += int64(cap(t.firstSeen)+cap(t.lastSeen)) * 8
	n += int64(cap(t.suppressed)+cap(t.deleted)) * 8
	for _, c := range t.traits {
		n += int64(cap(c.present))*8 + int64(cap(c.codes))*4 + int64(cap(c.f))*8 + int64(cap(c.i))*8 + int64(cap(c.b))*8 + int64(cap(c.a))*16
		n += c.dict.bytes()
		for k := range c.dictIdx {
			n += 48 + int64(len(k))
		}
	}
	for _, e := range t.events {
		n += int64(cap(e.has)+cap(e.first)+cap(e.last)+cap(e.unix))*8 + int64(cap(e.cum)+cap(e.count)+cap(e.offs))*4
		n += int64(len(e.wide)) * 48
		for p := range e.props {
			n += int64(cap(e.sums[p])+cap(e.vals[p])) * 8
		}
	}
	for _, c := range t.idents {
		n += int64(cap(c.offs))*4 + c.vals.bytes()
	}
	for _, b := range t.consent {
		n += int64(cap(*b)) * 8
	}
	return n
}

// TraitInfo describes one trait key across the live rows of a table, for
// trait discovery and autocomplete.
type TraitInfo struct {
	Key        string
	Types      []string // value types seen ("string", "float", "int", "bool", "array", "map"), most frequent first
	TypeCounts []int    // rows per entry of Types
	Count      int      // live rows with the trait set
	Top        []ValueCount
}

// ValueCount is one value and how many live rows hold it.
type ValueCount struct {
	Value any
	Count int
}

// TraitKeys describes every trait key, sorted by key. Top holds up to ten of
// the most frequent scalar values (ties broken by value's text).
func (t *Table) TraitKeys() []TraitInfo {
	var out []TraitInfo
	for _, key := range sortedKeys(t.traits) {
		c := t.traits[key]
		info := TraitInfo{Key: key}
		types := map[string]int{}
		values := map[any]int{}
		var codeCounts []int
		if c.kind == kindString {
			codeCounts = make([]int, c.dict.len())
		}
		for r := 0; r < t.n; r++ {
			if t.deleted.get(r) || !c.present.get(r) {
				continue
			}
			switch c.kind {
			case kindString:
				codeCounts[c.codes[r]]++
				types["string"]++
			default:
				v, ok := c.get(r)
				if !ok {
					continue
				}
				tn := typeName(v)
				types[tn]++
				switch v.(type) {
				case []any, map[string]any:
				default:
					values[v]++
				}
			}
			info.Count++
		}
		for code, n := range codeCounts {
			if n > 0 {
				values[c.dict.at(code)] += n
			}
		}
		for _, tn := range sortedKeys(types) {
			info.Types = append(info.Types, tn)
		}
		sort.SliceStable(info.Types, func(i, j int) bool { return types[info.Types[i]] > types[info.Types[j]] })
		for _, tn := range info.Types {
			info.TypeCounts = append(info.TypeCounts, types[tn])
		}
		for v, n := range values {
			info.Top = append(info.Top, ValueCount{v, n})
		}
		sort.Slice(info.Top, func(i, j int) bool {
			a, b := info.Top[i], info.Top[j]
			if a.Count != b.Count {
				return a.Count > b.Count
			}
			return fmt.Sprint(a.Value) < fmt.Sprint(b.Value)
		})
		if len(info.Top) > 10 {
			info.Top = info.Top[:10]
		}
		for i, vc := range info.Top {
			if s, ok := vc.Value.(string); ok {
				info.Top[i].Value = strings.Clone(s) // callers cache these; do not pin the arena
			}
		}
		out = append(out, info)
	}
	return out
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "float"
	case int64:
		return "int"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}
