package digestmap

import (
	"math/rand/v2"
	"testing"
)

// TestAgainstGoMap runs random puts, gets and deletes against a Go map.
// Keys come from a small pool whose first words share their low bits, so
// long probe runs form, wrap around the end of the table and are cut by
// deletions; the zero Key is in the pool too.
func TestAgainstGoMap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	pool := make([]Key, 300)
	for i := range pool {
		// Low bits 0..15 or near the top of a 1024-slot table: runs
		// collide and wrap.
		low := uint64(r.IntN(16))
		if i%3 == 0 {
			low = uint64(1024 - 1 - r.IntN(8))
		}
		pool[i] = Key{r.Uint64()<<20 | low, r.Uint64()}
	}
	pool[0] = Key{}
	pool[1] = Key{0, 1} // home slot 0, not the zero Key
	var m Map[uint64]
	want := map[Key]uint64{}
	for step := range 200_000 {
		k := pool[r.IntN(len(pool))]
		switch r.IntN(3) {
		case 0:
			v := r.Uint64()
			m.Put(k, v)
			want[k] = v
		case 1:
			m.Delete(k)
			delete(want, k)
		}
		got, ok := m.Get(k)
		w, wok := want[k]
		if ok != wok || got != w {
			t.Fatalf("step %d: Get(%x) = %d, %v; want %d, %v", step, k, got, ok, w, wok)
		}
		if m.Len() != len(want) {
			t.Fatalf("step %d: Len %d, want %d", step, m.Len(), len(want))
		}
	}
	for _, k := range pool {
		got, ok := m.Get(k)
		if w, wok := want[k]; ok != wok || got != w {
			t.Fatalf("final: Get(%x) = %d, %v; want %d, %v", k, got, ok, w, wok)
		}
	}
}

func TestSetGrowsAndKeepsEverything(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]Key, 100_000)
	for i := range keys {
		keys[i] = Key{r.Uint64(), r.Uint64()}
	}
	var s Map[struct{}]
	s.Grow(10) // then grows on its own
	for _, k := range keys {
		s.Put(k, struct{}{})
	}
	if s.Len() != len(keys) {
		t.Fatalf("Len %d, want %d", s.Len(), len(keys))
	}
	if load := float64(s.n) / float64(len(s.slots)); load > maxLoad || load < maxLoad/2 {
		t.Fatalf("load %.2f after growing", load)
	}
	for _, k := range keys {
		if !s.Has(k) {
			t.Fatalf("lost %x", k)
		}
	}
	if s.Has(Key{1, 2}) {
		t.Fatal("found a key never put")
	}
	for _, k := range keys[:50_000] {
		s.Delete(k)
	}
	for i, k := range keys {
		if s.Has(k) != (i >= 50_000) {
			t.Fatalf("key %d present %v after deleting the first half", i, s.Has(k))
		}
	}
}

func TestZeroMapIsEmpty(t *testing.T) {
	var m Map[int]
	if _, ok := m.Get(Key{3, 4}); ok || m.Len() != 0 {
		t.Fatal("zero Map is not empty")
	}
	m.Delete(Key{3, 4}) // no panic on an empty table
}

func BenchmarkGet(b *testing.B) {
	const n = 4_000_000
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]Key, n)
	var m Map[uint64]
	m.Grow(n)
	for i := range keys {
		keys[i] = Key{r.Uint64(), r.Uint64()}
		m.Put(keys[i], uint64(i))
	}
	b.ResetTimer()
	for i := range b.N {
		if _, ok := m.Get(keys[(i*7919)%n]); !ok {
			b.Fatal("missing")
		}
	}
}

func BenchmarkGoMapGet(b *testing.B) {
	const n = 4_000_000
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]Key, n)
	m := make(map[Key]uint64, n)
	for i := range keys {
		keys[i] = Key{r.Uint64(), r.Uint64()}
		m[keys[i]] = uint64(i)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, ok := m[keys[(i*7919)%n]]; !ok {
			b.Fatal("missing")
		}
	}
}

func TestTouchReadsHomeSlots(t *testing.T) {
	var m Map[uint64]
	if m.Touch(Key{1, 2}) != 0 {
		t.Fatal("Touch on an empty table")
	}
	k := Key{5, 9}
	m.Put(k, 1)
	// k sits in its home slot; an absent key's home slot is empty.
	if got := m.Touch(k) + m.Touch(Key{6, 1}); got != 5 {
		t.Fatalf("Touch = %d, want 5 (k's first word, nothing for the empty slot)", got)
	}
	if v, ok := m.Get(k); !ok || v != 1 || m.Len() != 1 {
		t.Fatal("Touch changed the table")
	}
}
