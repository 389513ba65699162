// Package digestmap is a hash table keyed by 128-bit digests, for the
// engine's big in-memory indexes: every stored messageId (dedupe) and every
// identifier's owner (identity resolution), millions of entries each,
// looked up once or more per ingested event.
//
// A Go map of that size costs several dependent cache misses a lookup
// (directory, table, control word, slot); on the ingest's critical path
// they added up to ~20 CPU-s of the 1M demo. The keys here are digests,
// already uniformly distributed, so the table uses them as they are: open
// addressing with linear probing in one flat slice, one cache line a
// lookup in the common case, and no pointers for the garbage collector to
// scan. Deletion shifts the following entries back (no tombstones).
package digestmap

// Key is a 128-bit digest. Its first word picks the home slot, so it must
// be well mixed (a cryptographic or seeded hash).
type Key [2]uint64

// slot puts the value first: a zero-size V (a set) then adds no padding.
type slot[V any] struct {
	v V
	k Key
}

// maxLoad is the share of slots in use above which the table doubles:
// linear probing stays short below ~70%.
const maxLoad = 0.7

// Map maps Keys to values of type V; Map[struct{}] is a set. The zero
// Map is empty and ready to use. It is not safe for concurrent use.
type Map[V any] struct {
	slots []slot[V]
	n     int // entries in slots
	// The zero Key marks empty slots, so it is kept aside.
	hasZero bool
	zero    V
}

// Len is the number of entries.
func (m *Map[V]) Len() int {
	if m.hasZero {
		return m.n + 1
	}
	return m.n
}

// Cap is how many entries the map holds before it next grows.
func (m *Map[V]) Cap() int { return int(maxLoad * float64(len(m.slots))) }

// Get returns k's value and whether k is present.
func (m *Map[V]) Get(k Key) (V, bool) {
	if k == (Key{}) {
		return m.zero, m.hasZero
	}
	if len(m.slots) == 0 {
		var none V
		return none, false
	}
	mask := uint64(len(m.slots) - 1)
	for i := k[0] & mask; ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.k == k {
			return s.v, true
		}
		if s.k == (Key{}) {
			var none V
			return none, false
		}
	}
}

// Has reports whether k is present.
func (m *Map[V]) Has(k Key) bool {
	_, ok := m.Get(k)
	return ok
}

// Touch reads k's home slot and returns its first word, which the caller
// keeps so the load stays. A caller about to look up many keys one at a
// time, with other work in between, touches them all first, in a tight
// loop: the cache misses then overlap there instead of adding up later.
func (m *Map[V]) Touch(k Key) uint64 {
	if len(m.slots) == 0 {
		return 0
	}
	return m.slots[k[0]&uint64(len(m.slots)-1)].k[0]
}

// Put sets k's value.
func (m *Map[V]) Put(k Key, v V) {
	if k == (Key{}) {
		m.zero, m.hasZero = v, true
		return
	}
	if float64(m.n+1) > maxLoad*float64(len(m.slots)) {
		m.grow()
	}
	mask := uint64(len(m.slots) - 1)
	for i := k[0] & mask; ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.k == k {
			s.v = v
			return
		}
		if s.k == (Key{}) {
			s.k, s.v = k, v
			m.n++
			return
		}
	}
}

// Delete removes k if present.
func (m *Map[V]) Delete(k Key) {
	if k == (Key{}) {
		var none V
		m.zero, m.hasZero = none, false
		return
	}
	if len(m.slots) == 0 {
		return
	}
	mask := uint64(len(m.slots) - 1)
	i := k[0] & mask
	for m.slots[i].k != k {
		if m.slots[i].k == (Key{}) {
			return
		}
		i = (i + 1) & mask
	}
	// Shift back every following entry of the run that may no longer be
	// reachable from its home slot across the hole at i.
	for j := (i + 1) & mask; m.slots[j].k != (Key{}); j = (j + 1) & mask {
		home := m.slots[j].k[0] & mask
		// The entry stays if its home lies cyclically in (i, j].
		if (i < j && i < home && home <= j) || (j < i && (i < home || home <= j)) {
			continue
		}
		m.slots[i] = m.slots[j]
		i = j
	}
	m.slots[i] = slot[V]{}
	m.n--
}

// Grow makes room for n more entries without growing again.
func (m *Map[V]) Grow(n int) {
	need := m.n + n
	size := max(len(m.slots), 16)
	for float64(need) > maxLoad*float64(size) {
		size *= 2
	}
	if size != len(m.slots) {
		m.resize(size)
	}
}

func (m *Map[V]) grow() { m.resize(max(16, 2*len(m.slots))) }

func (m *Map[V]) resize(size int) {
	old := m.slots
	m.slots = make([]slot[V], size)
	adviseHugePages(m.slots)
	mask := uint64(size - 1)
	for _, s := range old {
		if s.k == (Key{}) {
			continue
		}
		i := s.k[0] & mask
		for m.slots[i].k != (Key{}) {
			i = (i + 1) & mask
		}
		m.slots[i] = s
	}
}
