package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/engine/segment"
	"github.com/loupe-cdp/loupe/store"
)

// UnmergeResult says how a profile was split.
type UnmergeResult struct {
	Identifier string   `json:"identifier"`
	From       string   `json:"from"`
	Profiles   []string `json:"profiles"` // the profiles after the split; the first keeps the old id
	Moved      int      `json:"moved_events"`
	CutLinks   int      `json:"cut_links"`
}

// unmergeRec is the stored record of an unmerge ('U' seq).
type unmergeRec struct {
	Identifier string   `json:"i"`
	From       uint64   `json:"f"`
	Profiles   []uint64 `json:"p"`
	T          int64    `json:"t"`
	Actor      string   `json:"a"`
}

// Unmerge detaches an identifier from its profile. The links through it are
// cut, the rest of the profile's identifiers regroup by the links that
// remain, and every event goes to the group of its highest-priority
// identifier; the group holding the most identifiers keeps the profile id.
// Traits and aggregates are rebuilt from the events; rectified trait values
// stay with the profile that keeps the id.
func (e *Engine) Unmerge(ctx context.Context, ref string) (UnmergeResult, error) {
	x, err := identity.Parse(ref)
	if err != nil {
		return UnmergeResult{}, fmt.Errorf("unmerge needs TYPE:VALUE: %w", ErrBadRef)
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	defer e.resetCaches()
	var res UnmergeResult
	err = e.db.Update(func(t *store.Txn) error {
		pid, err := e.resolve(t, x.String())
		if err != nil {
			return err
		}
		old, err := e.loadProfile(t, pid)
		if err != nil {
			return err
		}
		res = UnmergeResult{Identifier: x.String(), From: pidString(pid)}
		if len(old.IDs) < 2 {
			return fmt.Errorf("%s is the only identifier of %s: nothing to detach", x, pidString(pid))
		}
		// Group the remaining identifiers by the links among them.
		xKey := string(store.IdentKey(x.Type, x.Value))
		members := map[string]bool{}
		for _, id := range old.IDs {
			members[string(store.IdentKey(id.T, id.V))] = true
		}
		parent := map[string]string{}
		var find func(string) string
		find = func(k string) string {
			for parent[k] != k {
				parent[k] = parent[parent[k]]
				k = parent[k]
			}
			return k
		}
		for k := range members {
			parent[k] = k
		}
		adj, err := e.profileEdges(ctx, t, pid)
		if err != nil {
			return err
		}
		for k, edges := range adj {
			for _, ed := range edges {
				if !members[ed.to] || k == xKey || ed.to == xKey {
					continue // the links through x are cut
				}
				ra, rb := find(k), find(ed.to)
				if ra != rb {
					parent[ra] = rb
				}
			}
		}
		groups := map[string][]identRec{}
		for _, id := range old.IDs {
			k := string(store.IdentKey(id.T, id.V))
			groups[find(k)] = append(groups[find(k)], id)
		}
		roots := make([]string, 0, len(groups))
		for r := range groups {
			roots = append(roots, r)
		}
		rules := &e.cfg.Identity
		best := func(ids []identRec) int {
			p := 1 << 30
			for _, id := range ids {
				p = min(p, rules.Priority(id.T))
			}
			return p
		}
		// The group with most identifiers keeps the id; ties go to the one
		// with the highest-priority identifier; x's own group never does.
		slices.SortFunc(roots, func(a, b string) int {
			ax, bx := a == xKey, b == xKey
			if ax != bx {
				if ax {
					return 1
				}
				return -1
			}
			if d := len(groups[b]) - len(groups[a]); d != 0 {
				return d
			}
			if d := best(groups[a]) - best(groups[b]); d != 0 {
				return d
			}
			return strings.Compare(a, b)
		})
		newPID := map[string]uint64{}
		recs := map[uint64]*profileRec{}
		owner := map[string]uint64{}
		for i, r := range roots {
			p := pid
			if i > 0 {
				e.nextPID++
				p = e.nextPID
			}
			newPID[r] = p
			recs[p] = &profileRec{PID: p}
			for _, id := range groups[r] {
				owner[string(store.IdentKey(id.T, id.V))] = p
			}
		}
		recs[pid].Merged = old.Merged
		for name, tr := range old.Traits {
			if tr.S == "rectification" {
				recs[pid].setTrait(name, tr.traitVal, e.cfg.Profiles.TraitHistory)
			}
		}
		// Move every event of every member pid to its group.
		pids := append([]uint64{pid}, old.Merged...)
		// A stored value may hold several events (codec.go); one whose
		// events do not all stay is rewritten as one value per group.
		type rewrite struct {
			del  []byte
			sets []kv
		}
		var rewrites []rewrite
		var carried []kv                            // the links riding in event values, read with them (codec.go)
		movedFrom := map[uint64]map[string]uint64{} // from pid -> messageId -> to pid
		moved := 0
		var folds []struct {
			p  *profileRec
			ev segment.Event
		}
		for _, m := range pids {
			err := t.Iterate(store.EventPrefix(m), store.IterOptions{}, func(k, v []byte) error {
				byTo := map[uint64]*eventBatch{}
				err := forEachEvent(k, v, func(ns int64, seq uint64, body []byte) error {
					se, err := decodeEvent(m, ns, body)
					if err != nil {
						return err
					}
					ev, err := segment.Parse(se.Raw, unixTime(ns))
					if err != nil {
						return fmt.Errorf("re-read event %s: %w", se.MessageID, err)
					}
					ev.MessageID = se.MessageID
					ids, _ := e.identifiers(&ev)
					rules.SortByPriority(ids)
					to := pid
					for _, id := range ids {
						if o, ok := owner[string(store.IdentKey(id.Type, id.Value))]; ok {
							to = o
							break
						}
					}
					folds = append(folds, struct {
						p  *profileRec
						ev segment.Event
					}{recs[to], ev})
					if byTo[to] == nil {
						byTo[to] = &eventBatch{}
					}
					byTo[to].add(ns, seq, body, nil) // body is the value's copy (Iterate)
					if to != m {
						moved++
						if movedFrom[m] == nil {
							movedFrom[m] = map[string]uint64{}
						}
						movedFrom[m][se.MessageID] = to
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("event %x: %w", k, err)
				}
				links, _, _ := splitLinks(v) // forEachEvent has checked the value
				if links != nil {
					carried = append(carried, kv{slices.Clone(k), slices.Clone(links)})
				}
				// A value whose events all stay is kept unless it carries
				// links: those are regrouped below, in blocks of their own.
				if _, stays := byTo[m]; stays && len(byTo) == 1 && links == nil {
					return nil
				}
				rw := rewrite{del: slices.Clone(k)}
				for to, b := range byTo {
					rw.sets = append(rw.sets, kv{b.key(to), b.value(nil, nil)})
				}
				rewrites = append(rewrites, rw)
				return nil
			})
			if err != nil {
				return err
			}
		}
		slices.SortStableFunc(folds, func(a, b struct {
			p  *profileRec
			ev segment.Event
		}) int {
			return a.ev.Timestamp.Compare(b.ev.Timestamp)
		})
		for _, f := range folds {
			ids, blocked := e.identifiers(&f.ev)
			var kept []identity.ID
			for _, id := range ids {
				if owner[string(store.IdentKey(id.Type, id.Value))] == f.p.PID {
					kept = append(kept, id)
				}
			}
			f.p.fold(&f.ev, summedProperties(&f.ev, &e.cfg.Profiles), kept, blocked, &e.cfg.Profiles)
		}
		// Identifiers that no event of their new group names keep their
		// original first/last seen.
		for r, ids := range groups {
			p := recs[newPID[r]]
			for _, id := range ids {
				if !slices.ContainsFunc(p.IDs, func(h identRec) bool { return h.T == id.T && h.V == id.V }) {
					p.IDs = append(p.IDs, id)
				}
			}
		}
		for _, rw := range rewrites {
			if err := t.Delete(rw.del); err != nil {
				return err
			}
			for _, kv := range rw.sets {
				if err := t.Set(kv.k, kv.v); err != nil {
					return err
				}
			}
		}
		for from, to := range movedFrom {
			if err := e.moveEventsHook(t, from, to); err != nil {
				return err
			}
		}
		// Links: those through x are cut; the rest move to the pid of their
		// group (both ends are in one group), as one block per group: the
		// 'L' blocks, and those the event values carried, which are
		// rewritten above without them.
		cut := 0
		linksTo := map[uint64]*linkBlock{}
		var oldBlocks [][]byte
		regroup := eachLink(func(k, a, b []byte, r linkRec) error {
			if string(a) == xKey || string(b) == xKey {
				cut++
				return nil
			}
			to := pid // a link to a non-member (damaged data) stays with the id
			if members[string(a)] {
				to = newPID[find(string(a))]
			}
			if linksTo[to] == nil {
				linksTo[to] = &linkBlock{}
			}
			linksTo[to].add(a, b, r)
			return nil
		})
		err = linkBlocks(t, pids, func(k, block []byte) error {
			oldBlocks = append(oldBlocks, slices.Clone(k))
			return regroup(k, block)
		})
		if err != nil {
			return err
		}
		for _, c := range carried {
			if err := regroup(c.k, c.v); err != nil {
				return err
			}
		}
		for _, k := range oldBlocks {
			if err := t.Delete(k); err != nil {
				return err
			}
		}
		if len(linksTo) > 0 {
			seq, err := e.nextStoredCounter(t, "linkblock")
			if err != nil {
				return err
			}
			for to, lb := range linksTo {
				if err := t.Set(store.LinkBlockKey(to, seq), lb.value()); err != nil {
					return err
				}
			}
		}
		var after []uint64
		var owners identBlocks
		var seen lastSeenBlock
		for _, r := range roots {
			p := recs[newPID[r]]
			b, err := encodeProfile(p)
			if err != nil {
				return err
			}
			if err := t.Set(store.PIDKey(store.PrefixProfile, p.PID), b); err != nil {
				return err
			}
			seen.seen(p.PID, p.Last)
			for _, id := range p.IDs {
				k, err := e.identKey(identity.ID{Type: id.T, Value: id.V})
				if err != nil {
					return err
				}
				owners.add(k, p.PID)
			}
			after = append(after, p.PID)
			res.Profiles = append(res.Profiles, pidString(p.PID))
		}
		if !owners.empty() {
			// The new owners override the index's earlier entries.
			seq, err := e.nextStoredCounter(t, "identblock")
			if err != nil {
				return err
			}
			if err := owners.each(seq, t.Set); err != nil {
				return err
			}
		}
		// Every root's entry overrides the index's earlier ones; pid is
		// one of the roots.
		lseq, err := e.nextStoredCounter(t, "lastseenblock")
		if err != nil {
			return err
		}
		if err := t.Set(store.LastSeenBlockKey(lseq), seen); err != nil {
			return err
		}
		res.Moved, res.CutLinks = moved, cut
		seq, err := e.nextStoredCounter(t, "unmerge")
		if err != nil {
			return err
		}
		rb, _ := json.Marshal(unmergeRec{Identifier: x.String(), From: pid, Profiles: after, T: e.now().UnixNano(), Actor: e.actor})
		if err := t.Set(store.SeqKey(store.PrefixUnmerge, seq), rb); err != nil {
			return err
		}
		next := e.counters.plus(counters{Profiles: int64(len(roots) - 1)})
		for _, name := range []string{"profiles"} {
			if err := t.Set(store.MetaKey("count/"+name), putUint64(uint64(*next.field(name)))); err != nil {
				return err
			}
		}
		if err := t.Set(store.MetaKey("seq/pid"), putUint64(e.nextPID)); err != nil {
			return err
		}
		e.statsMu.Lock()
		e.counters = next
		e.statsMu.Unlock()
		return nil
	})
	if err != nil {
		return UnmergeResult{}, fmt.Errorf("unmerge %s: %w", x, err)
	}
	e.dirtySeqs = e.dirtySeqs[:0]
	for _, id := range res.Profiles {
		if pid, ok := parsePID(id); ok {
			e.snapshotTouch(pid)
		}
	}
	if err := e.auditHook(ctx, "unmerge", res.From, fmt.Sprintf("detached %s type; profiles now %s", x.Type, strings.Join(res.Profiles, ", "))); err != nil {
		return res, err
	}
	return res, nil
}

// resetCaches drops the writer caches after a write that bypassed them.
func (e *Engine) resetCaches() {
	e.idents = nil
	e.lastSeenBlocks, e.identBlockCounts = -1, nil
	e.profiles = make(map[uint64]*profileRec)
	e.seqs = nil
}
