package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"

	"github.com/loupe-cdp/loupe/engine/consent"
	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/store"
)

// compliance is the per-engine state of the consent ledger, suppression
// and audit log. It lives beside the Engine (see compl) so that this part
// of the engine keeps to its own files.
type compliance struct {
	initOnce sync.Once
	initErr  error
	cfg      consent.Config
	secret   []byte // the data dir's salt for salted hashes

	// Suppression: salted hashes of erased identifiers, loaded at first
	// use and kept in memory; n lets the per-event check skip hashing when
	// there is nothing suppressed.
	supMu  sync.RWMutex
	sup    map[[32]byte]struct{}
	supN   atomic.Int64
	hmacMu sync.Mutex
	mac    hash.Hash
	// ipHashers holds *consent.IPHasher for the secret: the parse workers
	// hash the IP of every event with a consent signal.
	ipHashers sync.Pool

	// Consent ledger state, guarded by Engine.writeMu: the global head and,
	// per pid, the newest decision per purpose of the records stored under
	// it and the head of its profile chain. The cache is authoritative for
	// every pid it holds (records written by this engine update it before
	// their unit commits); pids not in it are read from the store.
	headLoaded bool
	global     consent.Head
	pids       map[uint64]*pidConsent
	// readTxn, set by the ingest hook for the length of one call, is the
	// writer's read snapshot. Opening a fresh transaction instead would wait
	// for the writer's in-flight commit and stall the ingest pipeline; the
	// snapshot is enough because every pid written since it was taken is in
	// pids.
	readTxn *store.Txn

	recPIDs consentPIDs // pids holding records, for the rules snapshot

	auditMu sync.Mutex
}

type pidConsent struct {
	cur  map[string]consent.Current
	head consent.Head
}

// compl returns the engine's compliance state, initialised on first use.
func (e *Engine) compl() (*compliance, error) {
	c := e.compliance
	c.initOnce.Do(func() { c.initErr = c.init(e) })
	return c, c.initErr
}

func (c *compliance) init(e *Engine) error {
	c.cfg = e.consentConfigSource()
	if err := c.cfg.Compile(); err != nil {
		return fmt.Errorf("consent config: %w", err)
	}
	c.pids = map[uint64]*pidConsent{}
	c.sup = map[[32]byte]struct{}{}
	secret, err := e.secret()
	if err != nil {
		return err
	}
	c.secret = secret
	c.mac = hmac.New(sha256.New, c.secret)
	c.ipHashers.New = func() any { return consent.NewIPHasher(c.secret) }
	err = e.db.View(func(t *store.Txn) error {
		return t.Iterate([]byte{store.PrefixSuppression}, store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
			if len(k) == 33 {
				var h [32]byte
				copy(h[:], k[1:])
				c.sup[h] = struct{}{}
			}
			return nil
		})
	})
	c.supN.Store(int64(len(c.sup)))
	return err
}

// identHash is the salted hash of an identifier: HMAC-SHA256(secret,
// type 0x00 value). Suppression entries are keyed by it.
func (c *compliance) identHash(typ, value string) [32]byte {
	c.hmacMu.Lock()
	defer c.hmacMu.Unlock()
	c.mac.Reset()
	c.mac.Write([]byte(typ))
	c.mac.Write([]byte{0})
	c.mac.Write([]byte(value))
	var h [32]byte
	c.mac.Sum(h[:0])
	return h
}

// suppressed reports whether an identifier (type and normalised value) is
// under an erasure suppression. It costs one atomic load while nothing is
// suppressed, and an HMAC per call otherwise.
func (e *Engine) suppressed(typ, value string) bool {
	c, err := e.compl()
	if err != nil || c.supN.Load() == 0 {
		return false
	}
	h := c.identHash(typ, value)
	c.supMu.RLock()
	_, ok := c.sup[h]
	c.supMu.RUnlock()
	return ok
}

// suppressedIDs reports whether any of an event's identifiers is
// suppressed: the ingest hook (hooks.go isSuppressed).
func (e *Engine) suppressedIDs(ids []identity.ID) bool {
	for _, id := range ids {
		if e.suppressed(id.Type, id.Value) {
			return true
		}
	}
	return false
}

func (c *compliance) addSuppressed(hs ...[32]byte) {
	c.supMu.Lock()
	for _, h := range hs {
		c.sup[h] = struct{}{}
	}
	c.supN.Store(int64(len(c.sup)))
	c.supMu.Unlock()
}

func (c *compliance) removeSuppressed(hs ...[32]byte) {
	c.supMu.Lock()
	for _, h := range hs {
		delete(c.sup, h)
	}
	c.supN.Store(int64(len(c.sup)))
	c.supMu.Unlock()
}

// forgetConsent drops cached consent state (after unmerge or erasure).
// The caller holds writeMu.
func (c *compliance) forgetConsent(pids ...uint64) {
	for _, p := range pids {
		delete(c.pids, p)
	}
}

// dropConsentCache forgets the per-profile consent state the ledger keeps
// for change detection, bounding its memory over a long ingest. The caller
// holds writeMu and has no uncommitted consent writes, so the store answers
// for every profile from here on.
//
// It goes through compl, like every other user of the ledger state: the
// ingest's parse workers may be initialising that state at this moment
// (prepareConsent), and only compl orders the two.
func (e *Engine) dropConsentCache() {
	if c, err := e.compl(); err == nil {
		c.pids = map[uint64]*pidConsent{}
	}
}
