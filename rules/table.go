package rules

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// Table is an in-memory columnar snapshot of profiles, the input of
// Rule.Eval.
//
// Layout: one row per profile, in append order. IDs are a string slice plus
// an ID index; first/last seen are int64 Unix nanoseconds; each trait key is
// one typed column (dictionary-encoded strings with uint32 codes, float64,
// int64 or bool values with a presence bitmap; a key whose values have more
// than one type falls back to an []any column); each event name keeps
// all-time count/first/last/sums per row plus the retained occurrences in CSR
// layout (per-row offsets into one unix []int64 array and one []float64 array
// per numeric property), which makes windows exact (see the package doc);
// identities are CSR string lists per identifier type; consent, suppression
// and deletion are bitmaps. Columns grow lazily: a row beyond a column's
// length simply has no value there.
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

// growTo extends s with zero values to length n (never shrinks).
func growTo[T any](s []T, n int) []T {
	if len(s) >= n {
		return s
	}
	if cap(s) >= n {
		return s[:n]
	}
	c := max(n, 2*cap(s), 64)
	ns := make([]T, n, c)
	copy(ns, s)
	return ns
}

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
	codes   []uint32 // kindString
	dict    []string
	dictIdx map[string]uint32
	f       []float64 // kindFloat
	i       []int64   // kindInt
	b       bitmap    // kindBool
	a       []any     // kindAny
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
	id := uint32(len(c.dict))
	c.dict = append(c.dict, s)
	if c.dictIdx != nil {
		c.dictIdx[s] = id
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
	if c.kind == kindString && rows >= minRowsToDrop && len(c.dict)*highCardinality > rows {
		c.dictIdx = nil
	}
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

// toAny converts a typed column to an []any column.
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
	c.codes, c.dict, c.dictIdx, c.f, c.i, c.b = nil, nil, nil, nil, nil, nil
}

// get returns row r's value; nil, false when absent.
func (c *traitCol) get(r int) (any, bool) {
	if !c.present.get(r) {
		return nil, false
	}
	switch c.kind {
	case kindString:
		return c.dict[c.codes[r]], true
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

// eventCol is one event name's columns.
type eventCol struct {
	name    string
	count   []int64
	first   []int64 // Unix ns, zeroNs if unknown
	last    []int64
	offs    []uint32 // CSR: row r's occurrences are unix[offs[r]:offs[r+1]]
	unix    []int64  // occurrence times, seconds, oldest first per row
	props   []string
	propIdx map[string]int
	sums    [][]float64 // [prop][row] all-time sums
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

func (e *eventCol) set(r int, s EventStats) {
	e.count = growTo(e.count, r+1)
	e.first = growTo(e.first, r+1)
	e.last = growTo(e.last, r+1)
	e.count[r] = s.Count
	e.first[r] = nsOf(s.First)
	e.last[r] = nsOf(s.Last)
	for name, v := range s.Sums {
		p := e.prop(name)
		e.sums[p] = growTo(e.sums[p], r+1)
		e.sums[p][r] = v
	}
	for len(e.offs) < r+1 {
		e.offs = append(e.offs, uint32(len(e.unix)))
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

// occ returns the bounds of row r's occurrences.
func (e *eventCol) occ(r int) (int, int) {
	if r+1 >= len(e.offs) {
		return 0, 0
	}
	return int(e.offs[r]), int(e.offs[r+1])
}

func (e *eventCol) cnt(r int) int64 {
	if r < len(e.count) {
		return e.count[r]
	}
	return 0
}

// windowCount counts row r's events with time > cutoff (cutoffNs in Unix
// ns, cutoffSec = floor(cutoffNs/1e9)). See the package doc for exactness.
func (e *eventCol) windowCount(r int, cutoffNs, cutoffSec int64) int64 {
	if r >= len(e.count) || e.count[r] == 0 {
		return 0
	}
	if f := e.first[r]; f != zeroNs && f > cutoffNs {
		return e.count[r]
	}
	lo, hi := e.occ(r)
	k := hi
	for k > lo && e.unix[k-1] > cutoffSec {
		k--
	}
	return int64(hi - k)
}

// sum returns row r's sum of property p (-1: unknown, 0) all time, or
// within the window when hasWindow.
func (e *eventCol) sum(r, p int, hasWindow bool, cutoffNs, cutoffSec int64) float64 {
	if p < 0 || r >= len(e.count) || e.count[r] == 0 {
		return 0
	}
	if !hasWindow || (e.first[r] != zeroNs && e.first[r] > cutoffNs) {
		if s := e.sums[p]; r < len(s) {
			return s[r]
		}
		return 0
	}
	lo, hi := e.occ(r)
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
	if r < len(e.last) && e.count[r] > 0 {
		return e.last[r]
	}
	return zeroNs
}

// identCol is one identifier type's values in CSR layout.
type identCol struct {
	offs []uint32
	vals []string
}

func (c *identCol) set(r int, vs []string) {
	for len(c.offs) < r+1 {
		c.offs = append(c.offs, uint32(len(c.vals)))
	}
	c.vals = append(c.vals, vs...)
	c.offs = append(c.offs, uint32(len(c.vals)))
}

func (c *identCol) get(r int) []string {
	if r+1 >= len(c.offs) {
		return nil
	}
	return c.vals[c.offs[r]:c.offs[r+1]:c.offs[r+1]]
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
	b.t.appendRow(p)
	return nil
}

// Build returns the table. The builder must not be used afterwards.
func (b *TableBuilder) Build() *Table {
	t := b.t
	b.t = nil
	for _, c := range t.traits {
		c.dropLookupIfUnique(t.n)
	}
	return t
}

// Upsert replaces the profile with p.ID, or adds it. The new version is
// appended as a new row and the old row is marked deleted, so existing row
// indexes stay valid (they keep pointing at the old, now deleted, version).
// See Table for the locking contract.
func (t *Table) Upsert(p *Profile) error {
	if p.ID == "" {
		return errors.New("rules: profile without ID")
	}
	t.Delete(p.ID)
	t.appendRow(p)
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
// indexes change.
func (t *Table) Compact() *Table {
	nt := newTable()
	for r := 0; r < t.n; r++ {
		if !t.deleted.get(r) {
			nt.appendRow(t.Row(r))
		}
	}
	return nt
}

func (t *Table) appendRow(p *Profile) {
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

// Identities returns row i's identities as a new map (the slices share the
// table's storage and must not be modified).
func (t *Table) Identities(i int) map[string][]string {
	m := map[string][]string{}
	for typ, c := range t.idents {
		if vs := c.get(i); len(vs) > 0 {
			m[typ] = vs
		}
	}
	return m
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
		if e.cnt(i) == 0 && i >= len(e.count) {
			continue
		}
		if i >= len(e.count) {
			continue
		}
		s := EventStats{Count: e.count[i], First: timeOf(e.first[i]), Last: timeOf(e.last[i])}
		for p, prop := range e.props {
			if i < len(e.sums[p]) {
				if s.Sums == nil {
					s.Sums = map[string]float64{}
				}
				s.Sums[prop] = e.sums[p][i]
			}
		}
		lo, hi := e.occ(i)
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
	strs := func(ss []string) {
		n += int64(cap(ss)) * 16
		for _, s := range ss {
			n += int64(len(s))
		}
	}
	strs(t.ids)
	n += int64(len(t.index)) * (16 + 4 + 28) // key header, value, map overhead; key bytes shared with ids
	n += int64(cap(t.firstSeen)+cap(t.lastSeen)) * 8
	n += int64(cap(t.suppressed)+cap(t.deleted)) * 8
	for _, c := range t.traits {
		n += int64(cap(c.present))*8 + int64(cap(c.codes))*4 + int64(cap(c.f))*8 + int64(cap(c.i))*8 + int64(cap(c.b))*8 + int64(cap(c.a))*16
		strs(c.dict)
		n += int64(len(c.dictIdx)) * 48
	}
	for _, e := range t.events {
		n += int64(cap(e.count)+cap(e.first)+cap(e.last)+cap(e.unix))*8 + int64(cap(e.offs))*4
		for p := range e.props {
			n += int64(cap(e.sums[p])+cap(e.vals[p])) * 8
		}
	}
	for _, c := range t.idents {
		n += int64(cap(c.offs)) * 4
		strs(c.vals)
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
			codeCounts = make([]int, len(c.dict))
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
				values[c.dict[code]] += n
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
