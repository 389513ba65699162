package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Errors callers branch on.
var (
	// ErrNotFound is returned by Get for a key that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLocked means another process holds the data dir.
	ErrLocked = errors.New("data dir is in use by another Loupe process")
	// ErrEncryptionKey means the dir is encrypted with another key, or
	// encrypted and no key was given, or not encrypted and a key was given.
	ErrEncryptionKey = errors.New("encryption key does not match this data dir")
	// ErrNewerSchema means the dir was written by a newer Loupe.
	ErrNewerSchema = errors.New("data dir was written by a newer version of Loupe")
	// ErrTxnTooBig means a transaction reached Badger's size limit; commit
	// what is there and go on in a new one.
	ErrTxnTooBig = badger.ErrTxnTooBig
	// ErrStop, returned from an Iterate callback, ends the iteration without
	// an error.
	ErrStop = errors.New("stop iteration")
)

// Options configure Open.
type Options struct {
	// EncryptionKey encrypts the data at rest (AES, 16, 24 or 32 bytes).
	EncryptionKey []byte
	// Logger receives Badger's own log when Verbose is set.
	Logger  *slog.Logger
	Verbose bool
	// MemTableSize and BlockCacheSize override Badger's defaults (bytes).
	MemTableSize   int64
	BlockCacheSize int64
}

// DB is an open Loupe store.
type DB struct {
	bdb    *badger.DB
	dir    string
	opts   Options
	schema uint32 // the version the dir was written with when opened
}

// Open opens (creating if needed) the Badger database in dir.
func Open(dir string, opts Options) (*DB, error) {
	if n := len(opts.EncryptionKey); n != 0 && n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("open store %s: encryption key must be 16, 24 or 32 bytes, got %d", dir, n)
	}
	// A `loupe gc` cut short between its two renames leaves no store at
	// dir but one beside it; put it back. (With dir present, leftovers are
	// Rewrite's to clean: they may belong to a gc running right now.)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := RecoverRewrite(dir); err != nil {
			return nil, fmt.Errorf("open store %s: recover interrupted rewrite: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	bdb, err := badger.Open(badgerOptions(dir, opts))
	if err != nil {
		return nil, classifyOpenError(dir, err)
	}
	db := &DB{bdb: bdb, dir: dir, opts: opts}
	if err := db.checkSchema(); err != nil {
		bdb.Close()
		return nil, err
	}
	return db, nil
}

func badgerOptions(dir string, opts Options) badger.Options {
	// Sized for a two-core workstation: two compactors (each compaction
	// holds table builders in memory), a 128 MB block cache. The index
	// cache is needed by encryption and keeps table indexes off the heap.
	//
	// Values of 256 bytes or more (events, profile records, consent
	// records, refused merges) go to the value log, written once, instead
	// of being rewritten by every LSM compaction. At 512 bytes that doubled
	// the 1M-person ingest; 256, which moved the ~430-byte consent records
	// out of the tree as well, took another 18% off its CPU (see
	// BENCHMARKS.md). The price: a scan of profile or consent records reads
	// the log at random offsets, slower when it is not in the page cache.
	// Deleted values stay in the log until `loupe gc` rewrites the store,
	// which erasure already requires.
	//
	// LSM blocks are not compressed: at 1M people Snappy and its buffers
	// cost a quarter of the ingest's user CPU and most of its garbage
	// collection, for 1.7 GB of disk (BENCHMARKS.md). Memtables are 128 MB
	// instead of 64: fewer, larger level-0 tables to compact cut the 1M
	// ingest's CPU by ~8%; the Go heap's soft limit keeps the process's
	// memory where it was.
	//
	// Compaction is tuned for bulk ingest of keys spread over the whole
	// key space (message ids, identifiers). A 256 MB base level (Badger's
	// default is 10 MB) keeps a 1M-person store in two levels below level
	// 0 (L5 and L6, read back from the tables of a 1M dir) where Badger's
	// level sizing gives four with the default. Level 0 compacts at 10 tables instead of 5 (and
	// stalls writes at 20 instead of 15), so each level-0 compaction, which
	// rewrites most of the base level whatever the table count, carries
	// twice the data. Together they took the 1M ingest from ~540 to
	// 410-440 CPU-s. At 20 level-0 tables the ingest was no faster and
	// readers would merge twice as many tables (BENCHMARKS.md).
	//
	// Value log files are 128 MB, not 1 GB: opening a dir reads the last
	// one through, checking every entry, before writing anywhere else. After
	// the 1M demo that file held 750 MB and the next command spent 16 s and
	// 2.5 GB of memory opening the dir. 128 MB still holds the largest value
	// an ingest unit writes (unitBytes, 32 MB) four times over.
	bo := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithCompression(options.None).
		WithNumMemtables(3).
		WithNumCompactors(2).
		WithBlockCacheSize(128 << 20).
		WithIndexCacheSize(64 << 20).
		WithMetricsEnabled(false).
		WithValueThreshold(256).
		WithMemTableSize(128 << 20).
		WithBaseLevelSize(256 << 20).
		WithNumLevelZeroTables(10).
		WithNumLevelZeroTablesStall(20).
		WithValueLogFileSize(128 << 20)
	if opts.MemTableSize > 0 {
		bo = bo.WithMemTableSize(opts.MemTableSize)
	}
	if opts.BlockCacheSize > 0 {
		bo = bo.WithBlockCacheSize(opts.BlockCacheSize)
	}
	if opts.Verbose {
		l := opts.Logger
		if l == nil {
			l = slog.Default()
		}
		bo = bo.WithLogger(badgerLogger{l})
	}
	if len(opts.EncryptionKey) > 0 {
		bo = bo.WithEncryptionKey(opts.EncryptionKey)
	}
	return bo
}

func classifyOpenError(dir string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Cannot acquire directory lock"):
		return fmt.Errorf("open %s: %w", dir, ErrLocked)
	case errors.Is(err, badger.ErrEncryptionKeyMismatch),
		strings.Contains(msg, "Encryption key mismatch"),
		strings.Contains(msg, "ErrEncryptionKeyMismatch"):
		return fmt.Errorf("open %s: %w", dir, ErrEncryptionKey)
	case strings.Contains(msg, "Invalid checksum") || strings.Contains(msg, "checksum mismatch") ||
		strings.Contains(msg, "cipher") || strings.Contains(msg, "failed to read"):
		// An encrypted dir opened without its key fails while reading the
		// manifest or tables; Badger does not say why.
		return fmt.Errorf("open %s: %w (or the dir is damaged: %v)", dir, ErrEncryptionKey, firstLine(msg))
	}
	return fmt.Errorf("open %s: %s", dir, firstLine(msg))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// checkSchema refuses a dir written by a newer Loupe and records the
// version of an older one; a new dir gets the current version.
func (db *DB) checkSchema() error {
	key := MetaKey("schema")
	return db.bdb.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			db.schema = SchemaVersion
			return txn.Set(key, binary.BigEndian.AppendUint32(nil, SchemaVersion))
		}
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if len(v) != 4 {
			return fmt.Errorf("schema version record is %d bytes, want 4: %w", len(v), ErrBadKey)
		}
		got := binary.BigEndian.Uint32(v)
		if got > SchemaVersion {
			return fmt.Errorf("%s has schema version %d, this Loupe reads up to %d: %w", db.dir, got, SchemaVersion, ErrNewerSchema)
		}
		db.schema = got
		return nil
	})
}

// Schema is the schema version the dir had when it was opened. Below
// SchemaVersion, the engine migrates the records whose layout changed and
// then calls SetSchemaCurrent.
func (db *DB) Schema() uint32 { return db.schema }

// SetSchemaCurrent records that the dir now has the current layout.
func (db *DB) SetSchemaCurrent() error {
	err := db.Update(func(t *Txn) error {
		return t.Set(MetaKey("schema"), binary.BigEndian.AppendUint32(nil, SchemaVersion))
	})
	if err != nil {
		return fmt.Errorf("record schema version: %w", err)
	}
	db.schema = SchemaVersion
	return nil
}

// Dir is the directory the database lives in.
func (db *DB) Dir() string { return db.dir }

// Close flushes and closes the database.
func (db *DB) Close() error { return db.bdb.Close() }

// Sync forces buffered writes to disk; call it where durability is promised.
func (db *DB) Sync() error { return db.bdb.Sync() }

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Txn) error) error {
	return db.bdb.View(func(t *badger.Txn) error { return fn(&Txn{t: t}) })
}

// Update runs fn in a read-write transaction and commits it.
func (db *DB) Update(fn func(*Txn) error) error {
	return db.bdb.Update(func(t *badger.Txn) error { return fn(&Txn{t: t}) })
}

// NewTxn starts a transaction the caller commits or discards. A commit may
// run on another goroutine while the caller builds the next transaction, as
// the engine's ingest does.
func (db *DB) NewTxn(update bool) *Txn { return &Txn{t: db.bdb.NewTransaction(update)} }

// DropPrefix physically removes every live key under each prefix. It blocks
// writes while it runs.
func (db *DB) DropPrefix(prefixes ...[]byte) error { return db.bdb.DropPrefix(prefixes...) }

// Size reports the LSM and value log sizes in bytes.
func (db *DB) Size() (lsm, vlog int64) { return db.bdb.Size() }

// Txn is a Badger transaction with copying reads and prefix iteration.
type Txn struct{ t *badger.Txn }

// Get returns a copy of the value of key, or ErrNotFound.
func (t *Txn) Get(key []byte) ([]byte, error) {
	item, err := t.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// Has reports whether key exists.
func (t *Txn) Has(key []byte) (bool, error) {
	_, err := t.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Set writes key. It returns ErrTxnTooBig when the transaction is full.
func (t *Txn) Set(key, value []byte) error { return t.t.Set(key, value) }

// Delete removes key.
func (t *Txn) Delete(key []byte) error { return t.t.Delete(key) }

// Commit commits the transaction.
func (t *Txn) Commit() error { return t.t.Commit() }

// Discard abandons the transaction; safe after Commit.
func (t *Txn) Discard() { t.t.Discard() }

// IterOptions shape an iteration.
type IterOptions struct {
	// KeysOnly skips fetching values, about twice as fast for key scans.
	KeysOnly bool
	// Reverse iterates from the end of the prefix backwards.
	Reverse bool
	// Seek starts at this key (inclusive) instead of the prefix's start
	// (or end, in reverse). It must begin with the prefix.
	Seek []byte
}

// Iterate calls fn for each key under prefix in order. The key and value
// slices are only valid during the call. fn returns ErrStop to end early.
func (t *Txn) Iterate(prefix []byte, o IterOptions, fn func(key, value []byte) error) error {
	io := badger.DefaultIteratorOptions
	io.Prefix = prefix
	io.PrefetchValues = !o.KeysOnly
	io.Reverse = o.Reverse
	if !o.KeysOnly {
		io.PrefetchSize = 64
	}
	it := t.t.NewIterator(io)
	defer it.Close()
	start := o.Seek
	if start == nil {
		start = prefix
		if o.Reverse {
			start = prefixEnd(prefix)
		}
	}
	for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		var val []byte
		if !o.KeysOnly {
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			val = v
		}
		if err := fn(item.Key(), val); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Cursor walks the keys under one prefix in order, under the caller's
// control: a merge-join of two record kinds keyed alike (profiles and their
// consent records, say) advances two cursors in one pass. Iterate is
// simpler when one kind is enough. A Cursor must be closed before its Txn
// is discarded.
type Cursor struct {
	it     *badger.Iterator
	prefix []byte
}

// NewCursor returns a cursor on the first key under prefix.
func (t *Txn) NewCursor(prefix []byte, o IterOptions) *Cursor {
	io := badger.DefaultIteratorOptions
	io.Prefix = prefix
	io.PrefetchValues = !o.KeysOnly
	c := &Cursor{it: t.t.NewIterator(io), prefix: prefix}
	c.it.Seek(prefix)
	return c
}

// Valid reports whether the cursor is on a key under its prefix.
func (c *Cursor) Valid() bool { return c.it.ValidForPrefix(c.prefix) }

// Key is the current key; it is only valid until Next.
func (c *Cursor) Key() []byte { return c.it.Item().Key() }

// Value is a copy of the current value.
func (c *Cursor) Value() ([]byte, error) { return c.it.Item().ValueCopy(nil) }

// Next moves to the next key.
func (c *Cursor) Next() { c.it.Next() }

// Close releases the cursor.
func (c *Cursor) Close() { c.it.Close() }

// prefixEnd is a key just after every key with prefix, for reverse seeks.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	return append(end, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
}

// Count counts the keys under prefix without reading values.
func (db *DB) Count(ctx context.Context, prefix []byte) (int64, error) {
	var n int64
	err := db.View(func(t *Txn) error {
		return t.Iterate(prefix, IterOptions{KeysOnly: true}, func(_, _ []byte) error {
			n++
			if n%65536 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		})
	})
	return n, err
}

// BadgerDir is where Badger's files live inside a Loupe data dir.
func BadgerDir(dataDir string) string { return filepath.Join(dataDir, "badger") }

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)), "from", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)), "from", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Info(strings.TrimSpace(fmt.Sprintf(f, a...)), "from", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {
	b.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...)), "from", "badger")
}
