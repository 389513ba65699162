package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/loupe-cdp/loupe/engine/consent"
	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/engine/internal/digestmap"
	"github.com/loupe-cdp/loupe/store"
)

// ErasePlan says what an erasure removes (or, in a dry run, would remove).
type ErasePlan struct {
	Profile   string           `json:"profile"`
	MergedIDs []string         `json:"merged_ids"`
	DryRun    bool             `json:"dry_run"`
	Counts    map[string]int64 `json:"counts"` // per record kind
	// Segments the person leaves (saved segments whose rule matches them now).
	Segments     []string `json:"segments"`
	Suppressions int      `json:"suppressions"` // identifiers suppressed from re-ingest
}

// EraseOptions shape an erasure.
type EraseOptions struct {
	DryRun bool
	// Request, when set, is the erasure request this fulfils; it is closed.
	Request string
}

// erasure is everything found for one subject.
type erasure struct {
	pid      uint64
	members  []uint64
	prof     *profileRec
	del      [][]byte               // keys to delete (besides the events)
	events   [][]byte               // event keys (a key may hold several events)
	nEvents  int64                  // events under those keys
	digests  map[msgDigest]struct{} // of those events' messageIds
	set      []kv                   // keys to rewrite (consent stubs, scrubbed records)
	ids      []identity.ID          // the subject's identifiers (normalised)
	needles  [][]byte               // lower-cased identifier values to scrub from files
	counts   map[string]int64
	identsBy map[string]int64 // identifiers per type, for the counters
}

// Erase removes the profile REF names — its events, identity entries,
// links, trait history, refused-merge records, merged ids — replaces its
// consent records by stubs that keep their hashes (both chains still
// verify), scrubs its identifiers from quarantined input, unmerge records
// and the rejects file, and adds suppression entries so later events with
// its identifiers are dropped. With DryRun it only counts.
//
// Badger keeps deleted bytes in its files until they are rewritten; run GC
// afterwards (`loupe gc`) to make the erasure physical.
func (e *Engine) Erase(ctx context.Context, ref string, opts EraseOptions) (ErasePlan, error) {
	c, err := e.compl()
	if err != nil {
		return ErasePlan{}, err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	var er *erasure
	err = e.db.View(func(t *store.Txn) error {
		var err error
		er, err = e.planErasure(ctx, t, ref)
		return err
	})
	if err != nil {
		return ErasePlan{}, fmt.Errorf("erase: %w", err)
	}
	plan := ErasePlan{Profile: pidString(er.pid), MergedIDs: []string{}, DryRun: opts.DryRun, Counts: er.counts, Suppressions: len(er.ids)}
	for _, m := range er.members[1:] {
		plan.MergedIDs = append(plan.MergedIDs, pidString(m))
	}
	segs, err := e.profileSegments(ctx, plan.Profile)
	if err != nil {
		return plan, fmt.Errorf("erase: segments: %w", err)
	}
	plan.Segments = segs
	if n, err := e.scrubRejects(er.needles, true); err == nil {
		plan.Counts["rejected_lines"] = int64(n)
	}
	if opts.DryRun {
		return plan, nil
	}

	// 1. Suppression first: a crash later leaves the subject blocked from
	// coming back, and a re-run finishes the job.
	now := e.now()
	hashes := make([][32]byte, len(er.ids))
	err = e.db.Update(func(t *store.Txn) error {
		for i, id := range er.ids {
			hashes[i] = c.identHash(id.Type, id.Value)
			v, _ := json.Marshal(suppressionRec{Type: id.Type, Profile: plan.Profile, Time: now.UnixNano(), Request: opts.Request})
			if err := t.Set(store.SuppressionKey(hashes[i]), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return plan, fmt.Errorf("erase: suppress: %w", err)
	}
	c.addSuppressed(hashes...)

	// 2. The events' messageIds out of the dedupe blocks, then the events,
	// in chunks (a profile may hold more events than one transaction
	// takes).
	if err := e.forgetMessages(er.digests); err != nil {
		return plan, fmt.Errorf("erase: %w", err)
	}
	all := er.events
	for len(all) > 0 {
		n := min(len(all), 20000)
		chunk := all[:n]
		all = all[n:]
		if err := e.db.Update(func(t *store.Txn) error {
			for _, k := range chunk {
				if err := t.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return plan, fmt.Errorf("erase: events: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return plan, err
		}
	}

	// 3. Everything else and the profile itself, last, in one transaction.
	next := e.counters
	next.Idents = make(map[string]int64, len(e.counters.Idents))
	for k, v := range e.counters.Idents {
		next.Idents[k] = v
	}
	next.Profiles--
	next.Events -= er.nEvents
	for typ, n := range er.identsBy {
		next.Idents[typ] -= n
	}
	err = e.db.Update(func(t *store.Txn) error {
		for _, k := range er.del {
			if err := t.Delete(k); err != nil {
				return err
			}
		}
		for _, s := range er.set {
			if err := t.Set(s.k, s.v); err != nil {
				return err
			}
		}
		for _, name := range counterNames {
			if err := t.Set(store.MetaKey("count/"+name), putUint64(uint64(max(0, *next.field(name))))); err != nil {
				return err
			}
		}
		for typ := range er.identsBy {
			if err := t.Set(store.MetaKey("count/ident/"+typ), putUint64(uint64(max(0, next.Idents[typ])))); err != nil {
				return err
			}
		}
		// Requests about the subject keep their ids and dates, and say so.
		return t.Iterate([]byte{store.PrefixRequest}, store.IterOptions{}, func(k, v []byte) error {
			var d DSR
			if json.Unmarshal(v, &d) != nil || d.Profile != plan.Profile || d.SubjectErased {
				return nil
			}
			d.SubjectErased = true
			return writeDSR(t, d)
		})
	})
	if err != nil {
		return plan, fmt.Errorf("erase: %w", err)
	}
	e.statsMu.Lock()
	e.counters = next
	e.statsMu.Unlock()
	e.resetCaches()
	c.forgetConsent(er.members...)
	e.snapshotTouch(er.members...)
	if _, err := e.scrubRejects(er.needles, false); err != nil {
		return plan, fmt.Errorf("erase: %w", err)
	}
	detail := fmt.Sprintf("erased %d events, %d identifiers, %d consent records (stubs kept), %d suppressions", er.nEvents, len(er.ids), er.counts["consent_records"], len(er.ids))
	if opts.Request != "" {
		detail += "; request " + opts.Request
	}
	if err := e.Audit(ctx, AuditErasure, plan.Profile, detail); err != nil {
		return plan, err
	}
	if opts.Request != "" {
		if _, err := e.CloseDSR(ctx, opts.Request, DSRFulfilled, ""); err != nil {
			return plan, err
		}
	}
	return plan, nil
}

type suppressionRec struct {
	Type    string `json:"type"`
	Profile string `json:"profile"`
	Time    int64  `json:"time"`
	Request string `json:"request,omitempty"`
}

func (e *Engine) planErasure(ctx context.Context, t *store.Txn, ref string) (*erasure, error) {
	pid, err := e.resolve(t, ref)
	if err != nil {
		return nil, err
	}
	p, err := e.loadProfile(t, pid)
	if err != nil {
		return nil, err
	}
	er := &erasure{pid: pid, prof: p, members: append([]uint64{pid}, p.Merged...), counts: map[string]int64{}, identsBy: map[string]int64{}, digests: map[msgDigest]struct{}{}}
	er.counts["profiles"] = 1
	er.del = append(er.del, store.PIDKey(store.PrefixProfile, pid))
	for _, m := range er.members[1:] {
		er.del = append(er.del, store.PIDKey(store.PrefixMerged, m))
	}
	er.counts["merged_ids"] = int64(len(er.members) - 1)
	seenNeedle := map[string]bool{}
	addNeedle := func(v string) {
		v = strings.ToLower(strings.TrimSpace(v))
		if len(v) >= 3 && !seenNeedle[v] {
			seenNeedle[v] = true
			er.needles = append(er.needles, []byte(v))
		}
	}
	identSet := map[string]bool{}
	owned := map[digestmap.Key]struct{}{} // index digests of the identifiers the subject owns
	for _, pi := range p.IDs {
		id := identity.ID{Type: pi.T, Value: pi.V}
		er.ids = append(er.ids, id)
		identSet[id.Type+":"+id.Value] = true
		er.identsBy[id.Type]++
		addNeedle(id.Value)
		k, err := e.identKey(id)
		if err != nil {
			return nil, err
		}
		named, found, err := lookupIdent(t, k)
		if err != nil {
			return nil, err
		}
		if found && slices.Contains(er.members, named) {
			owned[k] = struct{}{}
			er.counts["identities"]++
		}
	}
	rewrites, err := identRewrites(t, owned)
	if err != nil {
		return nil, err
	}
	seen, err := lastSeenRewrites(t, er.members)
	if err != nil {
		return nil, err
	}
	rewrites = append(rewrites, seen...)
	for _, r := range rewrites {
		if r.v == nil {
			er.del = append(er.del, r.k)
		} else {
			er.set = append(er.set, r)
		}
	}
	// Links live in blocks under the profile's pids (links.go), most in the
	// event values deleted below; a block that does not decode is deleted
	// all the same.
	countLinks := func(block []byte) {
		forEachLink(block, func(_, _ []byte, _ linkRec) error { er.counts["links"]++; return nil })
	}
	if err := linkBlocks(t, er.members, func(k, v []byte) error {
		er.del = append(er.del, slices.Clone(k))
		countLinks(v)
		return nil
	}); err != nil {
		return nil, err
	}
	for _, b := range p.Blocked {
		addNeedle(b.V)
	}
	for _, tr := range p.Traits {
		er.counts["trait_values"] += 1 + int64(len(tr.H))
		for _, v := range append([]traitVal{tr.traitVal}, tr.H...) {
			if s, ok := v.V.(string); ok && (strings.Contains(s, "@") || len(s) >= 6 && strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0) {
				addNeedle(s) // emails and phone-like values given as traits
			}
		}
	}
	refused := map[uint64]bool{}
	for i, m := range er.members {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := t.Iterate(store.EventPrefix(m), store.IterOptions{}, func(k, v []byte) error {
			er.events = append(er.events, slices.Clone(k))
			if links, _, err := splitLinks(v); err == nil && links != nil {
				countLinks(links)
			}
			// A value that does not decode is deleted all the same.
			forEachEvent(k, v, func(ns int64, _ uint64, body []byte) error {
				er.nEvents++
				if se, err := decodeEvent(m, ns, body); err == nil {
					er.digests[digestMessage(se.MessageID)] = struct{}{}
				}
				return nil
			})
			return nil
		}); err != nil {
			return nil, err
		}
		if err := t.Iterate(store.PIDKey(store.PrefixRefusedByPID, m), store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
			refused[store.Uint64(k, 9)] = true
			return nil
		}); err != nil {
			return nil, err
		}
		if err := t.Iterate(store.ConsentPrefix(m), store.IterOptions{}, func(k, v []byte) error {
			// Each live record becomes its stub, in a block as alone;
			// stubs stay, and so do records that do not decode (as a
			// block that does not parse does), for verify to report.
			erased := 0
			out, err := consent.RewriteStored(store.Uint64(k, 9), v, func(_ uint64, b []byte) ([]byte, error) {
				s, err := consent.Decode(b)
				if err != nil || s.Record == nil {
					return b, nil
				}
				erased++
				return consent.Erase(s, e.now())
			})
			if errors.Is(err, consent.ErrCorrupt) || erased == 0 {
				return nil
			}
			if err != nil {
				return err
			}
			er.set = append(er.set, kv{slices.Clone(k), out})
			er.counts["consent_records"] += int64(erased)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	er.counts["events"] = er.nEvents
	for seq := range refused {
		rec, err := e.refusedRecord(t, seq)
		if err != nil {
			continue
		}
		er.del = append(er.del, store.SeqKey(store.PrefixRefused, seq))
		for _, o := range append([]uint64{rec.PID}, rec.Others...) {
			er.del = append(er.del, store.PIDSeqKey(store.PrefixRefusedByPID, o, seq))
		}
		er.counts["refused_merges"]++
	}
	// Unmerge records name the identifier that was detached.
	if err := t.Iterate([]byte{store.PrefixUnmerge}, store.IterOptions{}, func(k, v []byte) error {
		var u unmergeRec
		if json.Unmarshal(v, &u) != nil || !identSet[u.Identifier] {
			return nil
		}
		typ, _, _ := strings.Cut(u.Identifier, ":")
		u.Identifier = typ + ":(erased)"
		b, _ := json.Marshal(u)
		er.set = append(er.set, kv{slices.Clone(k), b})
		er.counts["unmerge_records_scrubbed"]++
		return nil
	}); err != nil {
		return nil, err
	}
	// Quarantined input holding one of the identifiers.
	if err := t.Iterate([]byte{store.PrefixQuarantine}, store.IterOptions{}, func(k, v []byte) error {
		if containsAny(v, er.needles) {
			er.del = append(er.del, slices.Clone(k))
			er.counts["quarantined"]++
			return nil
		}
		var q struct {
			K string `json:"k"`
			D []byte `json:"d"`
		}
		if json.Unmarshal(v, &q) == nil && (containsAny(q.D, er.needles) || containsAny([]byte(q.K), er.needles)) {
			er.del = append(er.del, slices.Clone(k))
			er.counts["quarantined"]++
		}
		return nil
	}); err != nil {
		return nil, err
	}
	er.counts["suppressions_added"] = int64(len(er.ids))
	return er, nil
}

// containsAny reports whether b holds any needle, ignoring ASCII case
// (needles are lower-case).
func containsAny(b []byte, needles [][]byte) bool {
	if len(needles) == 0 || len(b) == 0 {
		return false
	}
	lb := bytes.ToLower(b)
	for _, n := range needles {
		if bytes.Contains(lb, n) {
			return true
		}
	}
	return false
}

// scrubRejects removes from the rejects file every line holding one of
// the needles, by writing the rest to a new file and renaming it over the
// old one. With count it only counts.
func (e *Engine) scrubRejects(needles [][]byte, count bool) (int, error) {
	e.rejectsMu.Lock()
	defer e.rejectsMu.Unlock()
	path := e.rejectsPath()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("rejects file: %w", err)
	}
	defer f.Close()
	var out *os.File
	var bw *bufio.Writer
	tmp := path + ".scrub"
	if !count {
		if out, err = os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err != nil {
			return 0, fmt.Errorf("rejects file: %w", err)
		}
		defer os.Remove(tmp)
		defer out.Close()
		bw = bufio.NewWriter(out)
	}
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if containsAny(line, needles) {
			n++
			continue
		}
		if bw != nil {
			bw.Write(line)
			bw.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("rejects file: %w", err)
	}
	if count || n == 0 {
		return n, nil
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("rejects file: %w", err)
	}
	if err := out.Sync(); err != nil {
		return n, fmt.Errorf("rejects file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return n, fmt.Errorf("rejects file: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return n, nil
}

// Unsuppress lifts erasure suppressions: ref is TYPE:VALUE for one
// identifier, or the erased profile's id for all of its identifiers. It
// returns how many entries were removed.
func (e *Engine) Unsuppress(ctx context.Context, ref string) (int, error) {
	c, err := e.compl()
	if err != nil {
		return 0, err
	}
	var keys [][]byte
	var hashes [][32]byte
	profile := ""
	err = e.db.Update(func(t *store.Txn) error {
		if _, ok := parsePID(ref); ok {
			profile = ref
			if err := t.Iterate([]byte{store.PrefixSuppression}, store.IterOptions{}, func(k, v []byte) error {
				var s suppressionRec
				if json.Unmarshal(v, &s) == nil && s.Profile == ref && len(k) == 33 {
					keys = append(keys, slices.Clone(k))
				}
				return nil
			}); err != nil {
				return err
			}
		} else {
			id, err := identity.Parse(ref)
			if err != nil {
				return fmt.Errorf("unsuppress needs TYPE:VALUE or an erased profile id: %w", ErrBadRef)
			}
			k := store.SuppressionKey(c.identHash(id.Type, id.Value))
			v, err := t.Get(k)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%s is not suppressed: %w", id.Type, ErrNotFound)
			}
			if err != nil {
				return err
			}
			var s suppressionRec
			json.Unmarshal(v, &s)
			profile = s.Profile
			keys = append(keys, k)
		}
		for _, k := range keys {
			var h [32]byte
			copy(h[:], k[1:])
			hashes = append(hashes, h)
			if err := t.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("unsuppress: %w", err)
	}
	if len(keys) == 0 {
		return 0, fmt.Errorf("unsuppress: %s has no suppression entries: %w", ref, ErrNotFound)
	}
	c.removeSuppressed(hashes...)
	if _, ok := parsePID(profile); !ok {
		profile = ""
	}
	return len(keys), e.Audit(ctx, AuditUnsuppress, profile, fmt.Sprintf("%d suppression entries lifted", len(keys)))
}

// GCResult reports what GC did.
type GCResult = store.RewriteStats

// GC makes deletions physical: it compacts the block indexes
// (CompactIndexes), rewrites the closed data dir's store into a fresh one
// holding only live data and swaps it in (see store.Rewrite for why
// Badger's own compaction is not enough), then records the run in the
// audit log. The engine on dir must be closed.
func GC(ctx context.Context, dir string, opts Options) (GCResult, error) {
	if err := compactDir(ctx, dir, opts); err != nil {
		return GCResult{}, fmt.Errorf("gc: %w", err)
	}
	st, err := store.Rewrite(ctx, store.BadgerDir(dir), store.Options{EncryptionKey: opts.EncryptionKey, Logger: opts.Logger, Verbose: opts.Verbose})
	if err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	e, err := Open(dir, opts)
	if err != nil {
		return st, err
	}
	defer e.Close()
	return st, e.Audit(ctx, AuditGC, "", fmt.Sprintf("store rewritten: %d live keys, %d -> %d bytes", st.Keys, st.BytesBefore, st.BytesAfter))
}

// compactDir compacts the block indexes of the dir (CompactIndexes), so
// that the rewrite after it keeps only the compacted blocks.
func compactDir(ctx context.Context, dir string, opts Options) error {
	e, err := Open(dir, opts)
	if err != nil {
		return err
	}
	return errors.Join(e.CompactIndexes(ctx), e.Close())
}
