package engine

import (
	"context"
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
// consented(purpose), read when a profile enters the rules snapshot.
// Profiles without any record get the default jurisdiction's defaults
// without touching the store.
func (e *Engine) consentNow(p *profileRec) map[string]bool {
	return e.consentNowFrom(p, nil, nil)
}

// consentNowFrom is consentNow for callers that read in bulk: own, when
// not nil, holds the encoded records stored under p's own pid, and merged,
// when not nil, holds those of every merged-away pid that has any (a
// snapshot build reads both in passes over the store, see
// mergedConsentRecords). What is nil is read from the store.
func (e *Engine) consentNowFrom(p *profileRec, own [][]byte, merged map[uint64][][]byte) map[string]bool {
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
	// The pids whose records must be read from the store.
	var read []uint64
	if _, ok := s.set[p.PID]; ok && own == nil {
		read = append(read, p.PID)
	}
	for _, m := range p.Merged {
		if merged != nil {
			own = append(own[:len(own):len(own)], merged[m]...)
			continue
		}
		if _, ok := s.set[m]; ok {
			read = append(read, m)
		}
	}
	dflt := s.dflt
	s.mu.Unlock()
	if len(read) == 0 && len(own) == 0 {
		return dflt
	}
	var recs []*consent.Record
	for _, v := range own {
		if s, err := consent.Decode(v); err == nil && s.Record != nil {
			recs = append(recs, s.Record)
		}
	}
	if len(read) > 0 {
		e.db.View(func(t *store.Txn) error {
			for _, m := range read {
				eachConsentRecord(t, m, func(s consent.Stored) {
					recs = append(recs, s.Record)
				})
			}
			return nil
		})
	}
	st := c.cfg.StateAt(recs, e.now(), "")
	out := make(map[string]bool, len(st))
	for k, d := range st {
		out[k] = d.Consented()
	}
	return out
}

// mergedConsentRecords reads, in one pass, the encoded consent records
// stored under merged-away pids (records stay under the pid that owned them
// when they were recorded), by pid. Merged-away ids ('a' keys) and consent
// records ('c' keys) are both ordered by pid, so this is a merge-join. t is
// the read transaction the caller scans profiles with, so both see the same
// version of the store.
func mergedConsentRecords(ctx context.Context, t *store.Txn) (map[uint64][][]byte, error) {
	out := map[uint64][][]byte{}
	cons := t.NewCursor([]byte{store.PrefixConsent}, store.IterOptions{})
	defer cons.Close()
	err := t.Iterate([]byte{store.PrefixMerged}, store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
		if len(k) != 9 {
			return nil
		}
		m := store.Uint64(k, 1)
		recs, err := consentRecordsAt(cons, m)
		if len(recs) > 0 {
			out[m] = recs
		}
		if err != nil {
			return err
		}
		return ctx.Err()
	})
	return out, err
}

// consentRecordsAt moves cons, a cursor over consent records, past every
// record stored under a pid below pid and returns the stored bytes of the
// records stored under pid, alone or in blocks (nil if none). Called with
// increasing pids, it merge-joins the consent records with another record
// kind keyed by pid.
func consentRecordsAt(cons *store.Cursor, pid uint64) ([][]byte, error) {
	var out [][]byte
	for ; cons.Valid(); cons.Next() {
		cpid, seq, err := store.ParseConsentKey(cons.Key())
		if err != nil || cpid < pid {
			continue
		}
		if cpid > pid {
			break
		}
		v, err := cons.Value()
		if err != nil {
			return out, err
		}
		// A damaged block gives the records before the damage; verify
		// reports it.
		consent.EachStored(seq, v, func(_ uint64, b []byte) error {
			out = append(out, b)
			return nil
		})
	}
	return out, nil
}
