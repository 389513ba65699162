// Package engine turns Segment-spec events into unified customer profiles
// on a local Badger store, and answers questions about them: who is this,
// why were these identifiers merged, what matches this rule.
//
// One Engine owns a data dir. Writers (ingest, sync, unmerge, erasure) are
// serialised by the engine; readers run concurrently.
package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"sync"
	"time"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/engine/internal/digestmap"
	"github.com/loupe-cdp/loupe/store"
)

// Options configure Open.
type Options struct {
	// EncryptionKey encrypts the store at rest (16, 24 or 32 bytes).
	EncryptionKey []byte
	// Verbose lets Badger's own log through to Logger.
	Verbose bool
	Logger  *slog.Logger
	// Now is the clock; tests inject a fixed one.
	Now func() time.Time
	// Actor names who acts, for the audit log; default the OS user.
	Actor string
}

// Engine is an open data dir.
type Engine struct {
	dir   string
	db    *store.DB
	cfg   Config
	now   func() time.Time
	actor string
	log   *slog.Logger

	// unitEvents is how many events an ingest transaction holds: the
	// unitEvents constant, smaller in tests that need several units.
	unitEvents int
	// lastSeenCompactAt and identCompactAt are how many blocks the
	// last-seen index and each identity partition may have before an
	// ingest compacts them (blocks.go): the constants of those names,
	// smaller in tests.
	lastSeenCompactAt, identCompactAt int

	// writeMu serialises everything that writes profiles, identities and
	// events. The caches below belong to the writer and are guarded by it.
	writeMu sync.Mutex
	// idents maps the 128-bit digest of every stored identifier
	// (identindex.go) to its owning pid, loaded by the first writer; nil
	// until then. A hit needs no store read and no look at the owner's
	// record. 24 bytes an identifier instead of ~80 with string keys:
	// millions fit.
	idents   *digestmap.Map[uint64]
	profiles map[uint64]*profileRec
	// lastSeenBlocks is how many blocks the last-seen index has, and
	// identBlockCounts how many each identity partition has, counted when
	// first needed: -1 and nil until then.
	lastSeenBlocks   int
	identBlockCounts []int
	// msgs holds the digest of every stored messageId (messages.go),
	// loaded by the first writer; nil until then.
	msgs    *messageSet
	nextPID uint64
	nextSeq uint64
	// counters change under writeMu and statsMu; Stats reads them under
	// statsMu alone, so it does not wait for a long ingest or sync.
	counters  counters
	statsMu   sync.Mutex
	seqs      map[string]uint64 // other sequence counters, loaded on first use
	dirtySeqs []string

	rejectsMu sync.Mutex

	// The data dir's secret (identindex.go), read or made on first use.
	secretOnce sync.Once
	secretVal  []byte
	secretErr  error

	// snapshotState is the in-memory rules snapshot (snapshot.go), built
	// on first use and kept current after writes.
	snapshotState *snapState
	// compliance is the consent ledger, suppression and audit state
	// (consent_state.go), initialised on first use.
	compliance *compliance
}

// RejectsFile is the name, in the data dir, of the NDJSON file that
// collects rejected input lines.
const RejectsFile = "rejects.ndjson"

// Open opens the data dir, creating it and its config when new.
func Open(dir string, opts Options) (*Engine, error) {
	if dir == "" {
		return nil, errors.New("open engine: no data dir")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open engine: %w", err)
	}
	cfg, err := loadConfig(dir)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(store.BadgerDir(dir), store.Options{
		EncryptionKey: opts.EncryptionKey,
		Logger:        opts.Logger,
		Verbose:       opts.Verbose,
	})
	if err != nil {
		return nil, err
	}
	e := &Engine{
		dir:        dir,
		db:         db,
		cfg:        cfg,
		now:        opts.Now,
		actor:      opts.Actor,
		log:        opts.Logger,
		profiles:   make(map[uint64]*profileRec),
		unitEvents: unitEvents,

		lastSeenCompactAt: lastSeenCompactAt,
		identCompactAt:    identCompactAt,
		lastSeenBlocks:    -1,

		snapshotState: &snapState{pending: map[uint64]struct{}{}},
		compliance:    &compliance{},
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.actor == "" {
		e.actor = osUser()
	}
	if err := e.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	if err := e.loadCounters(); err != nil {
		db.Close()
		return nil, err
	}
	return e, nil
}

// discardWriterState drops everything the writer keeps in memory after a
// write that failed or was cancelled part way: the caches ran ahead of the
// store (owners, profiles, consent chain heads, messageIds, counters of
// units that never committed) and are rebuilt from what was committed.
// Caller holds writeMu, with no commit in flight.
func (e *Engine) discardWriterState() error {
	e.resetCaches()
	e.msgs = nil
	e.dirtySeqs = e.dirtySeqs[:0]
	e.dropConsentCache()
	e.compliance.headLoaded = false
	return e.loadCounters()
}

// discardWriterStateOnError calls discardWriterState when *err is set,
// adding its own failure to *err. Writers defer it after taking writeMu and
// before deferring the writer's close, which waits for in-flight commits.
func (e *Engine) discardWriterStateOnError(err *error) {
	if *err == nil {
		return
	}
	if derr := e.discardWriterState(); derr != nil {
		*err = errors.Join(*err, fmt.Errorf("reload state after failed write: %w", derr))
	}
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// Close closes the store.
func (e *Engine) Close() error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	return e.db.Close()
}

// Dir is the data dir.
func (e *Engine) Dir() string { return e.dir }

// Config is the data dir's configuration.
func (e *Engine) Config() Config { return e.cfg }

// counters are the running totals kept in meta keys, updated in the same
// transaction as the records they count.
type counters struct {
	Profiles, Events, Merges, Refused, Blocked, Rejected, Suppressed int64
	Idents                                                           map[string]int64
}

var counterNames = []string{"profiles", "events", "merges", "refused", "blocked", "rejected", "suppressed"}

func (c *counters) field(name string) *int64 {
	switch name {
	case "profiles":
		return &c.Profiles
	case "events":
		return &c.Events
	case "merges":
		return &c.Merges
	case "refused":
		return &c.Refused
	case "blocked":
		return &c.Blocked
	case "rejected":
		return &c.Rejected
	case "suppressed":
		return &c.Suppressed
	}
	return nil
}

func (e *Engine) loadCounters() error {
	c := counters{Idents: map[string]int64{}}
	defer func() {
		e.statsMu.Lock()
		e.counters = c
		e.statsMu.Unlock()
	}()
	return e.db.View(func(t *store.Txn) error {
		for _, name := range counterNames {
			v, err := getUint64(t, store.MetaKey("count/"+name))
			if err != nil {
				return err
			}
			*c.field(name) = int64(v)
		}
		if err := t.Iterate(store.MetaKey("count/ident/"), store.IterOptions{}, func(k, v []byte) error {
			if len(v) == 8 {
				c.Idents[string(k[len(store.MetaKey("count/ident/")):])] = int64(binary.BigEndian.Uint64(v))
			}
			return nil
		}); err != nil {
			return err
		}
		var err error
		if e.nextPID, err = getUint64(t, store.MetaKey("seq/pid")); err != nil {
			return err
		}
		if e.nextSeq, err = getUint64(t, store.MetaKey("seq/event")); err != nil {
			return err
		}
		return nil
	})
}

func getUint64(t *store.Txn, key []byte) (uint64, error) {
	v, err := t.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("meta %q: %d bytes, want 8", key[1:], len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Stats reads the running totals.
func (e *Engine) Stats(ctx context.Context) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	c := e.counters
	s := Stats{
		Profiles: c.Profiles, Events: c.Events, Merges: c.Merges, RefusedMerges: c.Refused,
		Blocked: c.Blocked, Rejected: c.Rejected, Suppressed: c.Suppressed,
		Identifiers: make(map[string]int64, len(c.Idents)),
	}
	for k, v := range c.Idents {
		s.Identifiers[k] = v
	}
	return s, nil
}

// rejectsPath is the data dir's rejects file.
func (e *Engine) rejectsPath() string { return filepath.Join(e.dir, RejectsFile) }

var _ = identity.UserID
