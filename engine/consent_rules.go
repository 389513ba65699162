package engine

import (
	"sync"

	"github.com/loupe-cdp/loupe/engine/consent"
	"github.com/loupe-cdp/loupe/store"
)

// consentPIDs is the set of pids that hold consent records, so that the
// rules snapshot asks the store only about profiles that have a trail.
type consentPIDs struct {
	mu     sync.RWMutex
	loaded bool
	set    map[uint64]struct{}
	dflt   map[string]bool // the defaults of the default jurisdiction, shared read-only
}

func (c *compliance) withRecords() *consentPIDs { return &c.recPIDs }

func (c *compliance) notePIDs(pids ...uint64) {
	s := c.withRecords()
	s.mu.Lock()
	if s.loaded {
		for _, p := range pids {
			s.set[p] = struct{}{}
		}
	}
	s.mu.Unlock()
}

// consentNow is the consent in force now, by purpose, for the rules'
// consented(purpose): the snapshot hook (snapshot.go snapshotConsent).
// Profiles without any record get the default jurisdiction's defaults
// without touching the store.
func (e *Engine) consentNow(p *profileRec) map[string]bool {
	c, err := e.compl()
	if err != nil {
		return nil
	}
	s := c.withRecords()
	s.mu.Lock()
	if !s.loaded {
		s.set = map[uint64]struct{}{}
		e.db.View(func(t *store.Txn) error {
			return t.Iterate([]byte{store.PrefixConsent}, store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
				if pid, _, err := store.ParseConsentKey(k); err == nil {
					s.set[pid] = struct{}{}
				}
				return nil
			})
		})
		st := c.cfg.StateAt(nil, e.now(), "")
		s.dflt = make(map[string]bool, len(st))
		for k, d := range st {
			s.dflt[k] = d.Consented()
		}
		s.loaded = true
	}
	_, has := s.set[p.PID]
	for _, m := range p.Merged {
		if has {
			break
		}
		_, has = s.set[m]
	}
	dflt := s.dflt
	s.mu.Unlock()
	if !has {
		return dflt
	}
	var recs []*consent.Record
	e.db.View(func(t *store.Txn) error {
		for _, m := range append([]uint64{p.PID}, p.Merged...) {
			t.Iterate(store.ConsentPrefix(m), store.IterOptions{}, func(_, v []byte) error {
				if s, err := consent.Decode(v); err == nil && s.Record != nil {
					recs = append(recs, s.Record)
				}
				return nil
			})
		}
		return nil
	})
	st := c.cfg.StateAt(recs, e.now(), "")
	out := make(map[string]bool, len(st))
	for k, d := range st {
		out[k] = d.Consented()
	}
	return out
}
