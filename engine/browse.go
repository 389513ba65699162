package engine

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/store"
)

// Resolve turns a REF — a profile id ("p42", merged-away ids included) or
// TYPE:VALUE ("email:ann@example.com") — into the current profile id.
func (e *Engine) Resolve(ctx context.Context, ref string) (string, error) {
	var pid uint64
	err := e.db.View(func(t *store.Txn) error {
		var err error
		pid, err = e.resolve(t, ref)
		return err
	})
	if err != nil {
		return "", err
	}
	return pidString(pid), nil
}

func (e *Engine) resolve(t *store.Txn, ref string) (uint64, error) {
	ref = strings.TrimSpace(ref)
	if pid, ok := parsePID(ref); ok {
		live, err := livePID(t, pid)
		if errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("profile %s: %w", ref, ErrNotFound)
		}
		return live, err
	}
	id, err := identity.Parse(ref)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a profile id (p123) nor TYPE:VALUE (email:ann@example.com): %w", ref, ErrBadRef)
	}
	named, found, err := e.ownerOf(t, id)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("no profile has %s: %w", id, ErrNotFound)
	}
	return livePID(t, named)
}

// livePID is pid, or the profile it was merged into. The identity index
// may name a merged-away profile: a merge does not rewrite the index
// entries of the identifiers it moves ('i' in store/keys.go), and a merged
// id's 'a' key always names the final survivor, so one look is enough. A
// pid that is neither is store.ErrNotFound.
func livePID(t *store.Txn, pid uint64) (uint64, error) {
	if ok, err := t.Has(store.PIDKey(store.PrefixProfile, pid)); err != nil || ok {
		return pid, err
	}
	v, err := t.Get(store.PIDKey(store.PrefixMerged, pid))
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("merged id %s: %d bytes, want 8", pidString(pid), len(v))
	}
	return store.Uint64(v, 0), nil
}

func (e *Engine) loadProfile(t *store.Txn, pid uint64) (*profileRec, error) {
	b, err := t.Get(store.PIDKey(store.PrefixProfile, pid))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("profile %s: %w", pidString(pid), ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return decodeProfile(pid, b)
}

// memberPIDs are a profile's own pid and its merged-away pids: the pids
// its events and consent records are stored under.
func (e *Engine) memberPIDs(t *store.Txn, pid uint64) ([]uint64, error) {
	p, err := e.loadProfile(t, pid)
	if err != nil {
		return nil, err
	}
	return append([]uint64{pid}, p.Merged...), nil
}

// Profile returns the unified profile REF names.
func (e *Engine) Profile(ctx context.Context, ref string) (*Profile, error) {
	var out *Profile
	err := e.db.View(func(t *store.Txn) error {
		pid, err := e.resolve(t, ref)
		if err != nil {
			return err
		}
		p, err := e.loadProfile(t, pid)
		if err != nil {
			return err
		}
		out = p.export()
		return nil
	})
	return out, err
}

// Events pages through a profile's events, newest first. cursor is the
// Next of the previous page, "" for the first.
func (e *Engine) Events(ctx context.Context, ref, cursor string, limit int) (EventPage, error) {
	if limit <= 0 {
		limit = 50
	}
	var after []byte // time(8) seq(8) of the last event of the previous page
	if cursor != "" {
		b, err := hex.DecodeString(cursor)
		if err != nil || len(b) != 16 {
			return EventPage{}, fmt.Errorf("bad events cursor %q", cursor)
		}
		after = b
	}
	// A stored value may hold several events, all at or before its key's
	// (time, seq) (codec.go). Walking each member pid's keys newest first,
	// a page is complete once it holds limit+1 events newer than the next
	// key: nothing after that key can displace them. A cursor cannot seek
	// past older keys, whose values may hold events just below it.
	type hit struct {
		pos []byte // time(8) seq(8), the sort and cursor form
		pid uint64
		ns  int64
		raw []byte // body
	}
	var hits []hit
	newestFirst := func(a, b hit) int { return -strings.Compare(string(a.pos), string(b.pos)) }
	err := e.db.View(func(t *store.Txn) error {
		pid, err := e.resolve(t, ref)
		if err != nil {
			return err
		}
		pids, err := e.memberPIDs(t, pid)
		if err != nil {
			return err
		}
		for _, m := range pids {
			var mine []hit
			err := t.Iterate(store.EventPrefix(m), store.IterOptions{Reverse: true}, func(k, v []byte) error {
				if len(mine) > limit {
					slices.SortFunc(mine, newestFirst)
					mine = mine[:limit+1]
					if string(mine[limit].pos) > string(k[9:]) {
						return store.ErrStop
					}
				}
				err := forEachEvent(k, v, func(ns int64, seq uint64, body []byte) error {
					pos := store.AppendUint64(store.AppendTime(make([]byte, 0, 16), ns), seq)
					if after != nil && string(pos) >= string(after) {
						return nil
					}
					mine = append(mine, hit{pos, m, ns, slices.Clone(body)})
					return nil
				})
				if err != nil {
					return fmt.Errorf("event %x: %w", k, err)
				}
				return ctx.Err()
			})
			if err != nil {
				return err
			}
			hits = append(hits, mine...)
		}
		return nil
	})
	if err != nil {
		return EventPage{}, err
	}
	// Newest first across member pids: compare time then seq.
	slices.SortFunc(hits, newestFirst)
	var page EventPage
	for i, h := range hits {
		if i == limit {
			page.Next = hex.EncodeToString(hits[i-1].pos)
			break
		}
		ev, err := decodeEvent(h.pid, h.ns, h.raw)
		if err != nil {
			return EventPage{}, fmt.Errorf("event of %s at %x: %w", pidString(h.pid), h.pos, err)
		}
		page.Events = append(page.Events, ev)
	}
	return page, nil
}

// SortKey orders profile lists.
type SortKey int

// Sort orders.
const (
	SortLastSeen  SortKey = iota // newest activity first
	SortFirstSeen                // newest profiles first
	SortEvents                   // most events first
)

// String names the sort for display.
func (s SortKey) String() string {
	switch s {
	case SortFirstSeen:
		return "first seen"
	case SortEvents:
		return "events"
	}
	return "last seen"
}

// ProfileQuery selects and orders profiles for a list.
type ProfileQuery struct {
	Sort SortKey
	// Rule, when set, keeps only the profiles it matches.
	Rule string
}

// ProfileIndex is an ordered, in-memory list of profile ids: 8 bytes a
// profile, so a million-profile list pages in O(1).
type ProfileIndex struct {
	pids  []uint64
	total int
}

// Len is the number of profiles in the list.
func (ix *ProfileIndex) Len() int { return len(ix.pids) }

// Total is the number of profiles before any filter.
func (ix *ProfileIndex) Total() int { return ix.total }

// IDs returns up to n ids from offset.
func (ix *ProfileIndex) IDs(offset, n int) []string {
	if offset < 0 {
		offset = 0
	}
	if offset >= len(ix.pids) || n <= 0 {
		return nil
	}
	end := min(len(ix.pids), offset+n)
	out := make([]string, 0, end-offset)
	for _, p := range ix.pids[offset:end] {
		out = append(out, pidString(p))
	}
	return out
}

// lastSeenOrder reads the last-seen index (lastseen.go), newest first.
func (e *Engine) lastSeenOrder(ctx context.Context) ([]uint64, error) {
	var pids []uint64
	err := e.db.View(func(t *store.Txn) error {
		lt, err := readLastSeen(ctx, t)
		if err != nil {
			return err
		}
		es := lt.entries()
		slices.SortFunc(es, newestFirstEntry)
		pids = make([]uint64, len(es))
		for i, en := range es {
			pids[i] = en.pid
		}
		return nil
	})
	return pids, err
}

// Summaries returns list rows for ids, in the same order. An id that no
// longer exists gets a row with only its ID.
func (e *Engine) Summaries(ctx context.Context, ids []string) ([]ProfileSummary, error) {
	out := make([]ProfileSummary, len(ids))
	keyTraits := e.cfg.Profiles.KeyTraits
	err := e.db.View(func(t *store.Txn) error {
		for i, id := range ids {
			out[i].ID = id
			pid, ok := parsePID(id)
			if !ok {
				continue
			}
			p, err := e.loadProfile(t, pid)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out[i] = p.summary(keyTraits)
		}
		return nil
	})
	return out, err
}

func (p *profileRec) summary(keyTraits []string) ProfileSummary {
	s := ProfileSummary{
		ID:         pidString(p.PID),
		Email:      p.first(identity.Email),
		UserID:     p.first(identity.UserID),
		Phone:      p.first(identity.Phone),
		EventCount: p.Count,
		FirstSeen:  unixTime(p.First),
		LastSeen:   unixTime(p.Last),
	}
	for _, k := range keyTraits {
		if tr, ok := p.Traits[k]; ok {
			if s.Traits == nil {
				s.Traits = make(map[string]any, len(keyTraits))
			}
			s.Traits[k] = tr.V
		}
	}
	return s
}

// searchTypes are the identifier types a bare search prefix is matched
// against.
var searchTypes = []string{identity.Email, identity.UserID, identity.AnonymousID, identity.Phone}

// SearchIdentifiers finds identifiers starting with prefix, in value
// order: "ann" searches emails, user ids, anonymous ids and phones;
// "email:ann" searches one type. It scans the rules snapshot (built on
// first use): the identity index holds digests, not values.
func (e *Engine) SearchIdentifiers(ctx context.Context, prefix string, limit int) ([]IdentifierMatch, error) {
	if limit <= 0 {
		limit = 50
	}
	prefix = strings.TrimSpace(prefix)
	types := searchTypes
	if typ, val, ok := strings.Cut(prefix, ":"); ok && typ != "" && e.cfg.Identity.Priority(typ) < 1<<20 {
		types, prefix = []string{typ}, val
	}
	var out []IdentifierMatch
	err := e.withSnapshot(ctx, func(s *snapState) error {
		for _, typ := range types {
			v := identity.Normalize(typ, prefix)
			if typ == identity.Phone && v == "" {
				continue
			}
			var found []IdentifierMatch
			s.table.IdentitiesWithPrefix(typ, v, func(r int, value string) bool {
				found = append(found, IdentifierMatch{Type: typ, Value: value, ProfileID: pidString(s.rowPID[r])})
				return true
			})
			slices.SortFunc(found, func(a, b IdentifierMatch) int { return strings.Compare(a.Value, b.Value) })
			for _, m := range found[:min(len(found), limit-len(out))] {
				m.Value = strings.Clone(m.Value) // out of the snapshot's storage
				out = append(out, m)
			}
			if len(out) >= limit {
				break
			}
		}
		return ctx.Err()
	})
	return out, err
}

// ProfileIndex lists profiles in q's order, filtered by q's rule. The
// last-seen order comes from its index with a key-only scan; other orders
// and rules are served by the rules snapshot.
func (e *Engine) ProfileIndex(ctx context.Context, q ProfileQuery) (*ProfileIndex, error) {
	if q.Rule == "" && q.Sort == SortLastSeen {
		pids, err := e.lastSeenOrder(ctx)
		if err != nil {
			return nil, err
		}
		return &ProfileIndex{pids: pids, total: len(pids)}, nil
	}
	return e.snapshotIndex(ctx, q)
}

// Reveal records in the audit log that a person revealed the masked
// personal data of a profile, and why. The workbench calls it before it
// unmasks anything; without a reason nothing is revealed.
func (e *Engine) Reveal(ctx context.Context, profileID, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return errors.New("reveal needs a reason")
	}
	pid, err := e.Resolve(ctx, profileID)
	if err != nil {
		return err
	}
	return e.Audit(ctx, "reveal", pid, reason)
}

// RecentProfiles returns the n most recently active profile ids, newest
// first, and how many profiles there are: what a list's first screen
// needs without sorting the whole index.
func (e *Engine) RecentProfiles(ctx context.Context, n int) ([]string, int, error) {
	var ids []string
	var total int
	err := e.db.View(func(t *store.Txn) error {
		lt, err := readLastSeen(ctx, t)
		if err != nil {
			return err
		}
		total = lt.n
		for _, en := range lt.newest(n) {
			ids = append(ids, pidString(en.pid))
		}
		return nil
	})
	return ids, total, err
}
