package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/store"
)

// Why explains how two identifiers are connected: the chain of stored
// links between them, each with the event that made it; or, when they are
// not connected, the refused merges that stand between their profiles.
func (e *Engine) Why(ctx context.Context, refA, refB string) (WhyResult, error) {
	a, err := identity.Parse(refA)
	if err != nil {
		return WhyResult{}, fmt.Errorf("%w: %v", ErrBadRef, err)
	}
	b, err := identity.Parse(refB)
	if err != nil {
		return WhyResult{}, fmt.Errorf("%w: %v", ErrBadRef, err)
	}
	res := WhyResult{Path: []Link{}, Refused: []RefusedMerge{}}
	err = e.db.View(func(t *store.Txn) error {
		for _, id := range []identity.ID{a, b} {
			if _, ok, err := e.ownerOf(t, id); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("no profile has %s: %w", id, ErrNotFound)
			}
		}
		path, err := e.linkPath(ctx, t, a, b)
		if err != nil {
			return err
		}
		if path != nil {
			res.Connected, res.Path = true, path
			return nil
		}
		res.Refused, err = e.refusedBetween(t, a, b)
		return err
	})
	return res, err
}

// linkPath finds the chain of links from a to b; nil when they are not
// connected. Connected identifiers share a profile, so the search runs over
// that profile's edges, gathered from the links stored under each of its
// identifiers.
func (e *Engine) linkPath(ctx context.Context, t *store.Txn, a, b identity.ID) ([]Link, error) {
	start, goal := string(store.IdentKey(a.Type, a.Value)), string(store.IdentKey(b.Type, b.Value))
	if start == goal {
		return []Link{}, nil
	}
	pa, err := e.resolve(t, a.String())
	if err != nil {
		return nil, err
	}
	pb, err := e.resolve(t, b.String())
	if err != nil {
		return nil, err
	}
	if pa != pb {
		return nil, nil
	}
	adj, err := e.profileEdges(ctx, t, pa)
	if err != nil {
		return nil, err
	}
	type step struct {
		prev string
		link linkRec
	}
	seen := map[string]step{start: {}}
	queue := []string{start}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, ed := range adj[cur] {
			if _, ok := seen[ed.to]; ok {
				continue
			}
			seen[ed.to] = step{prev: cur, link: ed.rec}
			queue = append(queue, ed.to)
		}
		if _, ok := seen[goal]; ok {
			break
		}
	}
	if _, ok := seen[goal]; !ok {
		return nil, nil
	}
	var path []Link
	for cur := goal; cur != start; {
		s := seen[cur]
		path = append(path, Link{From: identString(s.prev), To: identString(cur), MessageID: s.link.M, Time: unixTime(s.link.T)})
		cur = s.prev
	}
	slices.Reverse(path)
	return path, nil
}

// edge is one direction of a stored link.
type edge struct {
	to  string
	rec linkRec
}

// profileEdges returns the undirected link graph among a profile's
// identifiers, keyed by encoded identifier: the links stored under its own
// and its merged-away pids (links.go).
func (e *Engine) profileEdges(ctx context.Context, t *store.Txn, pid uint64) (map[string][]edge, error) {
	p, err := e.loadProfile(t, pid)
	if err != nil {
		return nil, err
	}
	adj := make(map[string][]edge, len(p.IDs))
	err = profileLinks(t, append([]uint64{pid}, p.Merged...), func(_, a, b []byte, r linkRec) error {
		adj[string(a)] = append(adj[string(a)], edge{to: string(b), rec: r})
		adj[string(b)] = append(adj[string(b)], edge{to: string(a), rec: r})
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	return adj, nil
}

func identString(k string) string {
	typ, val, err := store.ParseIdentKey([]byte(k))
	if err != nil {
		return k
	}
	return typ + ":" + val
}

// refusedBetween lists refused merges that involve both identifiers'
// profiles.
func (e *Engine) refusedBetween(t *store.Txn, a, b identity.ID) ([]RefusedMerge, error) {
	members := func(id identity.ID) (map[uint64]bool, error) {
		pid, err := e.resolve(t, id.String())
		if err != nil {
			return nil, err
		}
		pids, err := e.memberPIDs(t, pid)
		if err != nil {
			return nil, err
		}
		set := make(map[uint64]bool, len(pids))
		for _, p := range pids {
			set[p] = true
		}
		return set, nil
	}
	ma, err := members(a)
	if err != nil {
		return nil, err
	}
	mb, err := members(b)
	if err != nil {
		return nil, err
	}
	out := []RefusedMerge{}
	seen := map[uint64]bool{}
	for pid := range ma {
		err := t.Iterate(store.PIDKey(store.PrefixRefusedByPID, pid), store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
			if len(k) != 17 {
				return nil
			}
			seq := store.Uint64(k, 9)
			if seen[seq] {
				return nil
			}
			seen[seq] = true
			rec, err := e.refusedRecord(t, seq)
			if err != nil {
				return err
			}
			involved := append([]uint64{rec.PID}, rec.Others...)
			inA, inB := false, false
			for _, p := range involved {
				inA = inA || ma[p]
				inB = inB || mb[p]
			}
			if inA && inB {
				out = append(out, rec.export(t, e))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(x, y RefusedMerge) int { return x.Time.Compare(y.Time) })
	return out, nil
}

func (e *Engine) refusedRecord(t *store.Txn, seq uint64) (refusedRec, error) {
	var rec refusedRec
	b, err := t.Get(store.SeqKey(store.PrefixRefused, seq))
	if errors.Is(err, store.ErrNotFound) {
		return rec, fmt.Errorf("refused merge %d is indexed but missing", seq)
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("refused merge %d: %w", seq, err)
	}
	return rec, nil
}

func (r refusedRec) export(t *store.Txn, e *Engine) RefusedMerge {
	pid := r.PID
	if cur, err := e.resolve(t, pidString(pid)); err == nil {
		pid = cur
	}
	return RefusedMerge{MessageID: r.M, Time: unixTime(r.T), Reason: r.Reason, Dropped: r.Dropped, Kept: r.Kept, ProfileID: pidString(pid)}
}

// RefusedMerges lists the refused merges that involved a profile.
func (e *Engine) RefusedMerges(ctx context.Context, ref string) ([]RefusedMerge, error) {
	out := []RefusedMerge{}
	err := e.db.View(func(t *store.Txn) error {
		pid, err := e.resolve(t, ref)
		if err != nil {
			return err
		}
		pids, err := e.memberPIDs(t, pid)
		if err != nil {
			return err
		}
		seen := map[uint64]bool{}
		for _, m := range pids {
			err := t.Iterate(store.PIDKey(store.PrefixRefusedByPID, m), store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
				seq := store.Uint64(k, 9)
				if seen[seq] {
					return nil
				}
				seen[seq] = true
				rec, err := e.refusedRecord(t, seq)
				if err != nil {
					return err
				}
				out = append(out, rec.export(t, e))
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	slices.SortFunc(out, func(x, y RefusedMerge) int { return x.Time.Compare(y.Time) })
	return out, err
}
