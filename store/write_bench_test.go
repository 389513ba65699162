package store

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// BenchmarkWrite measures the store's raw write path with the options Open
// sets. One op is one key, committed in transactions of 10,000 keys with
// one commit in flight, as the engine's writer commits, so ns/op is the
// cost of a key and the two cases bound what an ingest can do per event on
// this machine. events writes 900-byte values (a stored Segment event; they
// go to the value log) under event keys of random profiles; index writes
// 8-byte values under 40-byte random keys (message-id markers, identity
// index entries), which stay in the LSM tree. Give it enough keys to fill
// many memtables:
//
//	go test ./store/ -run '^$' -bench Write -benchmem -benchtime 8000000x
func BenchmarkWrite(b *testing.B) {
	const txnKeys = 10_000
	cases := []struct {
		name string
		key  func(r *rand.Rand, i int, buf []byte) []byte
		val  []byte
	}{
		{"events", func(r *rand.Rand, i int, buf []byte) []byte {
			return append(buf[:0], EventKey(r.Uint64N(1_000_000), int64(i)*1e6, uint64(i))...)
		}, make([]byte, 900)},
		{"index", func(r *rand.Rand, i int, buf []byte) []byte {
			buf = append(buf[:0], PrefixIdentity)
			for range 5 {
				buf = binary.BigEndian.AppendUint64(buf, r.Uint64())
			}
			return buf[:40]
		}, make([]byte, 8)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			db, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			r := rand.New(rand.NewPCG(1, 2))
			for i := range c.val {
				c.val[i] = byte('a' + i%26)
			}
			var buf []byte
			done := make(chan error, 1)
			done <- nil
			b.SetBytes(int64(len(c.val)))
			b.ResetTimer()
			txn := db.NewTxn(true)
			for i := 0; i < b.N; i++ {
				buf = c.key(r, i, buf)
				// Badger keeps the slices until commit: each key its own.
				if err := txn.Set(append([]byte(nil), buf...), c.val); err != nil {
					b.Fatal(err)
				}
				if (i+1)%txnKeys == 0 {
					// One commit in flight while the next batch is built,
					// as the engine's writer does.
					if err := <-done; err != nil {
						b.Fatal(err)
					}
					go func(txn *Txn) { done <- txn.Commit() }(txn)
					txn = db.NewTxn(true)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			if err := txn.Commit(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}
