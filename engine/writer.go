package engine

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/engine/consent"
	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/engine/internal/digestmap"
	"github.com/loupe-cdp/loupe/engine/segment"
	"github.com/loupe-cdp/loupe/store"
)

// writer applies events to the store for one ingest call. It reads through
// a snapshot plus the engine's caches, builds each unit's writes in memory,
// and commits each unit in one transaction while the next ones are being
// built (up to commitsInFlight units wait for their commit, in order).
// Because only one writer runs at a time (Engine.writeMu), the caches are the
// truth for everything this writer touched and the snapshot for the rest.
type writer struct {
	e     *Engine
	snap  *store.Txn
	stats IngestStats
	unit  *unit

	// msgs is the engine's set of every stored messageId digest
	// (messages.go), which this writer extends as it goes.
	msgs *messageSet
	// suppressedMsgs holds the messageIds suppressed in this run: they are
	// not stored, so a repeat in the same run is a duplicate, a repeat in a
	// later run is suppressed again.
	suppressedMsgs map[msgDigest]struct{}
	keyBuf         []byte
	persisted      map[uint64]int64 // last-seen value of each cached profile as stored
	freshFrom      uint64           // nextPID when the writer started
	units          int
	onReject       func(source string, line int, reason string)

	warmSum uint64   // keeps warm's loads from being optimised away
	cur     *decoded // the event apply is working on
	secret  []byte   // the dir's, for the digests of identifiers the parse workers did not hash

	// commits are the units handed to their commit goroutines and not yet
	// known to be done, oldest first, each as the channel closed when it
	// is. Each goroutine commits after the one before it, so units land in
	// order (their counters are absolute values).
	commits  []chan struct{}
	inflight sync.WaitGroup
	errMu    sync.Mutex
	err      error // first failed commit
}

// commitsInFlight is how many flushed units may wait for their commit
// while the writer builds the next: the writer goes on building while one
// commits and the others wait their turn, instead of stopping, with the
// parse workers behind it, whenever a commit runs long. Two was right
// while Badger's commits took most of a core; once the identity index
// moved into blocks (schema 6) three ran the 1M ingest at 88,775 and
// 89,630 events/s against 80,468 for two, and four at 82,668.
const commitsInFlight = 3

// unit is the writes of one transaction.
type unit struct {
	sets       []kv
	dels       [][]byte
	batches    map[uint64]*eventBatch // each profile's events in this unit (codec.go)
	links      map[uint64]*linkBlock  // each profile's new links in this unit (links.go)
	linkSeq    uint64                 // the sequence number of the unit's 'L' blocks: links of a pid with no events in the unit
	msgs       []byte                 // digests of the messageIds the unit ingests, 16 bytes each
	idents     identBlocks            // identity index entries of the identifiers the unit attaches
	lastSeen   lastSeenBlock          // last-seen index entries of the profiles the unit moves or merges away (lastseen.go)
	chain      []byte                 // block of global consent chain entries (consent_ledger.go)
	chainFirst uint64                 // sequence number of the block's first entry
	// consentHead is the head of the global consent chain as the unit's
	// last record left it; consent holds, for each profile chain the unit
	// extends, its records and its head (consent_ledger.go).
	consentHead consent.Head
	consent     map[uint64]*recordBlock
	dirty       map[uint64]*profileRec
	events      int
	bytes       int
	rejects     []rejectLine
	checkpoint  *Checkpoint
	noSplit     bool // IngestBatch: one transaction whatever its size
	maxEvents   int  // the unit is full at this many events
	delta       counters
	// snap is the writer's read snapshot, for hooks that read the store
	// while the unit is built.
	snap *store.Txn
	// freshFrom: profiles with a larger pid were created by this writer,
	// so the store holds nothing else of theirs.
	freshFrom uint64
}

type kv struct{ k, v []byte }

// apply writes kv in t: its value, or a deletion when the value is nil.
func (kv kv) apply(t *store.Txn) error {
	if kv.v == nil {
		return t.Delete(kv.k)
	}
	return t.Set(kv.k, kv.v)
}

func newUnit(maxEvents int) *unit {
	return &unit{dirty: make(map[uint64]*profileRec), batches: make(map[uint64]*eventBatch), links: make(map[uint64]*linkBlock),
		delta: counters{Idents: map[string]int64{}}, maxEvents: maxEvents}
}

func (u *unit) full() bool {
	return !u.noSplit && (u.events >= u.maxEvents || u.bytes >= unitBytes)
}

// empty reports whether committing the unit would change nothing.
func (u *unit) empty() bool {
	d := u.delta
	return len(u.sets) == 0 && len(u.dels) == 0 && len(u.batches) == 0 && u.idents.empty() && len(u.lastSeen) == 0 && len(u.links) == 0 && len(u.consent) == 0 && len(u.msgs) == 0 && u.checkpoint == nil && len(d.Idents) == 0 &&
		d.Profiles == 0 && d.Events == 0 && d.Merges == 0 && d.Refused == 0 && d.Blocked == 0 &&
		d.Rejected == 0 && d.Suppressed == 0
}

func (u *unit) set(k, v []byte) { u.sets = append(u.sets, kv{k, v}); u.bytes += len(k) + len(v) }
func (u *unit) del(k []byte)    { u.dels = append(u.dels, k) }

// deletedProfile marks, in the profile cache, a profile merged away.
var deletedProfile = &profileRec{}

func (e *Engine) newWriter() (*writer, error) {
	msgs, err := e.messages()
	if err != nil {
		return nil, err
	}
	if _, err := e.identIndex(); err != nil {
		return nil, err
	}
	secret, err := e.secret()
	if err != nil {
		return nil, err
	}
	w := &writer{e: e, unit: newUnit(e.unitEvents), msgs: msgs, secret: secret, suppressedMsgs: make(map[msgDigest]struct{})}
	w.openSnapshot()
	w.unit.snap, w.unit.freshFrom = w.snap, w.freshFrom
	return w, nil
}

// reserve makes room in the in-memory indexes for an input of size bytes
// (0 when unknown), so that they do not grow by doubling while it is
// ingested. At 1M people the two tables end at 256 and 192 MB; doubling
// their way there copied ~450 MB of slots at random and faulted in twice
// the memory, ~7 CPU-s of the ingest. Every event brings a messageId; the
// demo brings 0.7 new identifiers an event, real traffic fewer (a
// session's anonymous id serves many events), so half an identifier an
// event is reserved: a table that needs more still grows on its own. A
// compressed input reserves too little and grows as before.
func (w *writer) reserve(size int64) {
	events := int(size / minEventBytes)
	w.msgs.Grow(events)
	w.e.idents.Grow(events / 2)
}

func (w *writer) openSnapshot() {
	w.snap = w.e.db.NewTxn(false)
	w.persisted = make(map[uint64]int64)
	w.e.profiles = make(map[uint64]*profileRec)
	// Everything written so far is committed and visible to the new
	// snapshot: per-profile consent state can be read back when needed, and
	// only profiles created from now on are known to have nothing stored.
	w.e.dropConsentCache()
	w.freshFrom = w.e.nextPID
	if w.unit != nil {
		w.unit.snap, w.unit.freshFrom = w.snap, w.freshFrom
	}
}

func (w *writer) close() {
	w.inflight.Wait()
	if w.snap != nil {
		w.snap.Discard()
	}
	// Profiles are cheap to reload; don't hold them between ingests.
	w.e.profiles = make(map[uint64]*profileRec)
}

// wait waits for every flushed unit's commit and returns the first error.
func (w *writer) wait() error {
	w.inflight.Wait()
	w.commits = w.commits[:0]
	return w.failed()
}

// settle waits until at most n flushed units wait for their commit and
// returns the first commit error.
func (w *writer) settle(n int) error {
	for len(w.commits) > n {
		<-w.commits[0]
		w.commits = w.commits[1:]
	}
	return w.failed()
}

// failed returns the first commit error.
func (w *writer) failed() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// warm reads the table slots the writer is about to look up for job j's
// events. Both tables are hundreds of MB at 1M people, so nearly every
// lookup misses the cache; here the misses are independent loads in a tight
// loop, which the CPU overlaps, and the lookups that follow, with the rest
// of each event's work in between, find their lines in the cache.
func (w *writer) warm(j *decodeJob) {
	var sum uint64
	for i := range j.out {
		if d := &j.out[i]; d.err == nil {
			sum += w.msgs.Touch(d.digest.key())
			for _, k := range d.idKeys {
				sum += w.e.idents.Touch(k)
			}
		}
	}
	w.warmSum += sum
}

// identKey is id's digest: the one the parse workers computed when id is
// one of the current event's identifiers.
func (w *writer) identKey(id identity.ID) digestmap.Key {
	if d := w.cur; d != nil {
		for i := range d.ids {
			if d.ids[i] == id {
				return d.idKeys[i]
			}
		}
	}
	return identDigest(w.secret, id)
}

// OwnerOf implements identity.Owner. The loaded index holds every
// stored identifier (identIndex), so a miss is an identifier no profile
// has.
func (w *writer) OwnerOf(id identity.ID) uint64 {
	pid, _ := w.e.idents.Get(w.identKey(id))
	return pid
}

// setOwner records that pid owns id, a new identifier of pid.
func (w *writer) setOwner(id identity.ID, pid uint64) {
	k := w.identKey(id)
	w.e.idents.Put(k, pid)
	w.unit.idents.add(k, pid)
}

// CountOf implements identity.Owner.
func (w *writer) CountOf(pid uint64, typ string) int {
	p, err := w.profile(pid)
	if err != nil || p == nil {
		return 0
	}
	return p.countOf(typ)
}

// profile returns the cached or stored profile pid.
func (w *writer) profile(pid uint64) (*profileRec, error) {
	if p, ok := w.e.profiles[pid]; ok {
		if p == deletedProfile {
			return nil, nil
		}
		return p, nil
	}
	b, err := w.snap.Get(store.PIDKey(store.PrefixProfile, pid))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("identity index points at %s, which has no record", pidString(pid))
	}
	if err != nil {
		return nil, err
	}
	p, err := decodeProfile(pid, b)
	if err != nil {
		return nil, err
	}
	w.e.profiles[pid] = p
	w.persisted[pid] = p.Last
	return p, nil
}

// identifiers extracts an event's identifiers, normalised, split into
// usable and blocked.
func (e *Engine) identifiers(ev *segment.Event) (ids, blocked []identity.ID) {
	rules := &e.cfg.Identity
	add := func(typ, raw string) {
		if raw == "" {
			return
		}
		id := identity.ID{Type: typ, Value: identity.Normalize(typ, raw)}
		if id.Value == "" || rules.IsBlocked(id.Value) {
			blocked = append(blocked, identity.ID{Type: typ, Value: strings.TrimSpace(raw)})
			return
		}
		for _, have := range ids {
			if have == id {
				return
			}
		}
		ids = append(ids, id)
	}
	add(identity.UserID, ev.UserID)
	add(identity.AnonymousID, ev.AnonymousID)
	if ev.Type == "alias" {
		// previousId is, in practice, the anonymous id the user had before
		// signing up (analytics.js alias()).
		add(identity.AnonymousID, ev.PreviousID)
	}
	add(identity.Email, ev.Email())
	add(identity.Phone, ev.Phone())
	add(identity.DeviceID, ev.DeviceID())
	for _, name := range rules.ExtraTraits {
		if v, ok := ev.Trait(name); ok {
			switch x := v.(type) {
			case string:
				add(name, x)
			case float64:
				add(name, fmt.Sprint(x))
			}
		}
	}
	return ids, blocked
}

// add applies one decoded record.
func (w *writer) add(d *decoded, source string) error {
	w.stats.Read++
	if d.err != nil {
		w.reject(source, d.line, d.data, d.err.Error())
		return nil
	}
	ev := &d.ev
	if y := ev.Timestamp.Year(); y < 1900 || y > 2200 {
		w.reject(source, d.line, d.data, fmt.Sprintf("field \"timestamp\": %s is out of range", ev.Timestamp.Format(time.RFC3339)))
		return nil
	}
	if w.duplicate(d.digest) {
		w.stats.Duplicates++
		return nil
	}
	w.unit.delta.Blocked += int64(len(d.blocked))
	if len(d.ids) == 0 {
		w.reject(source, d.line, d.data, "no usable identifier: every identifier is on the blocklist ("+joinIDs(d.blocked)+")")
		return nil
	}
	if w.e.isSuppressed(d.ids) {
		w.stats.Suppressed++
		w.unit.delta.Suppressed++
		w.suppressedMsgs[d.digest] = struct{}{}
		return nil
	}
	return w.apply(d)
}

// duplicate reports whether a messageId was ingested before, by any run,
// or suppressed earlier in this one.
func (w *writer) duplicate(d msgDigest) bool {
	if w.msgs.Has(d.key()) {
		return true
	}
	_, ok := w.suppressedMsgs[d]
	return ok
}

func joinIDs(ids []identity.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, ", ")
}

func (w *writer) reject(source string, line int, data []byte, reason string) {
	w.stats.Rejected++
	w.unit.delta.Rejected++
	r := rejectLine{Time: w.e.now().UTC(), Source: source, Line: line, Reason: reason}
	// encoding/json decides: goccy/go-json's Valid accepts what is not
	// JSON ("007"), and the rejects file must stay NDJSON.
	if stdjson.Valid(data) {
		r.Data = append([]byte(nil), data...)
	} else {
		r.Text = string(data)
	}
	w.unit.rejects = append(w.unit.rejects, r)
	if w.onReject != nil {
		w.onReject(source, line, reason)
	}
}

// apply resolves the event's profile, merging where the rules allow, and
// writes the event.
func (w *writer) apply(d *decoded) error {
	e, ev, ids, blocked := w.e, &d.ev, d.ids, d.blocked
	rules := &e.cfg.Identity
	w.cur = d
	defer func() { w.cur = nil }()
	dec := rules.Decide(ids, w)
	t := ev.Timestamp.UnixNano()
	seq := e.nextSeq + 1
	e.nextSeq = seq

	// Links: each kept identifier that is new, or sits in another profile
	// than the anchor, is joined to the anchor by this event.
	owners := dec.Owners
	anchor := 0
	for i := range dec.Kept {
		if owners[i] != 0 {
			anchor = i
			break
		}
	}
	var target *profileRec
	if len(dec.Profiles) == 0 {
		e.nextPID++
		target = &profileRec{PID: e.nextPID}
		e.profiles[target.PID] = target
		w.stats.ProfilesCreated++
		w.unit.delta.Profiles++
	} else {
		var err error
		if target, err = w.profile(dec.Profiles[0]); err != nil {
			return err
		}
		if target == nil {
			return fmt.Errorf("profile %s vanished during ingest", pidString(dec.Profiles[0]))
		}
		for _, other := range dec.Profiles[1:] {
			if err := w.merge(target, other); err != nil {
				return err
			}
		}
	}
	for i, id := range dec.Kept {
		if i == anchor || (owners[i] != 0 && owners[i] == owners[anchor]) {
			continue
		}
		w.link(target.PID, dec.Kept[anchor], id, ev.MessageID, t)
	}
	for i, id := range dec.Kept {
		if owners[i] == 0 {
			w.setOwner(id, target.PID)
			w.unit.delta.Idents[id.Type]++
		}
	}
	if len(dec.Dropped) > 0 {
		if err := w.refuse(ev, dec, target.PID); err != nil {
			return err
		}
	}
	target.fold(ev, d.sums, dec.Kept, blocked, &e.cfg.Profiles)
	w.unit.dirty[target.PID] = target

	batch := w.unit.batches[target.PID]
	if batch == nil {
		batch = &eventBatch{}
		w.unit.batches[target.PID] = batch
	}
	batch.add(t, seq, d.header, ev.Raw)
	w.unit.bytes += len(d.header) + len(ev.Raw) + 32
	w.msgs.Put(d.digest.key(), struct{}{})
	w.unit.msgs = append(w.unit.msgs, d.digest[:]...)
	if err := e.onEvent(w.unit, target.PID, d); err != nil {
		return err
	}
	w.unit.events++
	w.unit.delta.Events++
	w.stats.Ingested++
	return nil
}

// merge folds profile otherPID into target: the older id survives, the
// other becomes a merged-away id that still resolves.
func (w *writer) merge(target *profileRec, otherPID uint64) error {
	other, err := w.profile(otherPID)
	if err != nil {
		return err
	}
	if other == nil {
		return nil
	}
	e := w.e
	target.absorb(other, &e.cfg.Profiles)
	// The stored index keeps naming other for its identifiers: readers
	// follow its 'a' key, written below, to target (livePID). Rewriting
	// them was 0.6M of the 1M demo's 15M writes. The engine's index moves.
	for _, id := range other.IDs {
		w.e.idents.Put(w.identKey(identity.ID{Type: id.T, Value: id.V}), target.PID)
	}
	w.unit.set(store.PIDKey(store.PrefixMerged, other.PID), putUint64(target.PID))
	for _, m := range other.Merged {
		w.unit.set(store.PIDKey(store.PrefixMerged, m), putUint64(target.PID))
	}
	w.unit.del(store.PIDKey(store.PrefixProfile, other.PID))
	if _, ok := w.persisted[other.PID]; ok {
		w.unit.lastSeen.gone(other.PID)
	}
	delete(w.unit.dirty, other.PID)
	e.profiles[other.PID] = deletedProfile
	w.stats.Merges++
	w.unit.delta.Merges++
	w.unit.delta.Profiles--
	return nil
}

// link records, in the unit's block for profile pid, that this event
// joined identifiers a and b (links.go).
func (w *writer) link(pid uint64, a, b identity.ID, msgID string, t int64) {
	lb := w.unit.links[pid]
	if lb == nil {
		lb = &linkBlock{}
		w.unit.links[pid] = lb
	}
	w.keyBuf = store.AppendIdentKey(w.keyBuf[:0], a.Type, a.Value)
	n := len(w.keyBuf)
	w.keyBuf = store.AppendIdentKey(w.keyBuf, b.Type, b.Value)
	lb.add(w.keyBuf[:n], w.keyBuf[n:], linkRec{M: msgID, T: t})
}

// refusedRec is the stored form of a refused merge.
type refusedRec struct {
	M       string   `json:"m"`
	T       int64    `json:"t"`
	Reason  string   `json:"r"`
	Dropped []string `json:"d"`
	Kept    []string `json:"k"`
	PID     uint64   `json:"p"`
	Others  []uint64 `json:"o,omitempty"` // profiles the dropped identifiers belonged to
}

func (w *writer) refuse(ev *segment.Event, dec identity.Decision, pid uint64) error {
	e := w.e
	rec := refusedRec{M: ev.MessageID, T: ev.Timestamp.UnixNano(), Reason: dec.Reason, PID: pid}
	for _, id := range dec.Kept {
		rec.Kept = append(rec.Kept, id.String())
	}
	for _, id := range dec.Dropped {
		rec.Dropped = append(rec.Dropped, id.String())
		if o := w.OwnerOf(id); o != 0 && o != pid && !slices.Contains(rec.Others, o) {
			rec.Others = append(rec.Others, o)
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	seq, err := e.nextCounter(w.snap, "refused")
	if err != nil {
		return err
	}
	w.unit.set(store.SeqKey(store.PrefixRefused, seq), b)
	w.unit.set(store.PIDSeqKey(store.PrefixRefusedByPID, pid, seq), nil)
	for _, o := range rec.Others {
		w.unit.set(store.PIDSeqKey(store.PrefixRefusedByPID, o, seq), nil)
	}
	w.stats.RefusedMerges++
	w.unit.delta.Refused++
	return nil
}

// nextCounter hands out sequence numbers for record kinds other than
// events; it reads the stored counter once per engine.
func (e *Engine) nextCounter(t *store.Txn, name string) (uint64, error) {
	if e.seqs == nil {
		e.seqs = map[string]uint64{}
	}
	v, ok := e.seqs[name]
	if !ok {
		var err error
		if v, err = getUint64(t, store.MetaKey("seq/"+name)); err != nil {
			return 0, err
		}
	}
	v++
	e.seqs[name] = v
	if !slices.Contains(e.dirtySeqs, name) {
		e.dirtySeqs = append(e.dirtySeqs, name)
	}
	return v, nil
}

// nextStoredCounter is nextCounter for a write outside an ingest unit
// (which stores its counters when it flushes): it stores the counter in t
// too. Taking the number through the writer's cache, not the stored
// counter alone, keeps the next unit from being handed it again.
func (e *Engine) nextStoredCounter(t *store.Txn, name string) (uint64, error) {
	seq, err := e.nextCounter(t, name)
	if err != nil {
		return 0, err
	}
	return seq, t.Set(store.MetaKey("seq/"+name), putUint64(seq))
}

// flush commits the current unit. Unless final, the commit runs in the
// background, after the units flushed before it, while the caller builds
// the next unit.
func (w *writer) flush(final bool) error {
	pending := commitsInFlight - 1
	if final {
		pending = 0
	}
	if err := w.settle(pending); err != nil {
		return err
	}
	e := w.e
	u := w.unit
	w.unit = newUnit(e.unitEvents)
	w.unit.snap, w.unit.freshFrom = w.snap, w.freshFrom
	if err := e.appendRejects(u.rejects); err != nil {
		return err
	}
	if u.empty() {
		return nil
	}
	for pid := range u.links {
		if u.batches[pid] != nil {
			continue // the links ride in the value of pid's events (codec.go)
		}
		seq, err := e.nextCounter(w.snap, "linkblock")
		if err != nil {
			return err
		}
		u.linkSeq = seq
		break
	}
	for pid, p := range u.dirty {
		b, err := encodeProfile(p)
		if err != nil {
			return err
		}
		u.set(store.PIDKey(store.PrefixProfile, pid), b)
		if old, had := w.persisted[pid]; !had || old != p.Last {
			u.lastSeen.seen(pid, p.Last)
			w.persisted[pid] = p.Last
		}
	}
	if len(u.lastSeen) > 0 {
		seq, err := e.nextCounter(w.snap, "lastseenblock")
		if err != nil {
			return err
		}
		u.set(store.LastSeenBlockKey(seq), u.lastSeen)
		if e.lastSeenBlocks >= 0 {
			e.lastSeenBlocks++
		}
	}
	if !u.idents.empty() {
		seq, err := e.nextCounter(w.snap, "identblock")
		if err != nil {
			return err
		}
		u.idents.each(seq, func(k, v []byte) error {
			u.set(k, v)
			if e.identBlockCounts != nil {
				e.identBlockCounts[k[1]]++
			}
			return nil
		})
	}
	if len(u.msgs) > 0 {
		seq, err := e.nextCounter(w.snap, "msgblock")
		if err != nil {
			return err
		}
		u.set(store.MessageBlockKey(seq), append([]byte{msgBlockVersion}, u.msgs...))
	}
	if len(u.chain) > 0 {
		u.set(store.ConsentChainKey(u.chainFirst), u.chain)
		u.set(store.ConsentHeadKey(), u.consentHead.Bytes())
	}
	if len(u.consent) > 0 {
		heads := make([]byte, 0, len(u.consent)*consent.HeadBlockEntrySize)
		for pid, b := range u.consent {
			if len(b.b) > 0 {
				u.set(store.ConsentKey(pid, b.first), b.b)
			}
			heads = consent.AppendHeadBlockEntry(heads, pid, b.head)
		}
		u.set(store.ConsentHeadBlockKey(u.chainFirst), heads)
	}
	next := e.counters.plus(u.delta)
	for _, name := range counterNames {
		u.set(store.MetaKey("count/"+name), putUint64(uint64(*next.field(name))))
	}
	for typ := range u.delta.Idents {
		u.set(store.MetaKey("count/ident/"+typ), putUint64(uint64(next.Idents[typ])))
	}
	u.set(store.MetaKey("seq/pid"), putUint64(e.nextPID))
	u.set(store.MetaKey("seq/event"), putUint64(e.nextSeq))
	for _, name := range e.dirtySeqs {
		u.set(store.MetaKey("seq/"+name), putUint64(e.seqs[name]))
	}
	e.dirtySeqs = e.dirtySeqs[:0]
	if u.checkpoint != nil {
		u.set(store.NameKey(store.PrefixCheckpoint, u.checkpoint.Source), u.checkpoint.Value)
	}
	// Units are alike: size the next one's write list like this one's
	// rather than growing it by doubling (60 MB less allocated at 100k
	// people).
	w.unit.sets = make([]kv, 0, len(u.sets)+len(u.sets)/8)
	e.applyDelta(u.delta)
	e.snapshotNoteUnit(u) // rows re-read lazily from the store; see snapshot.go

	if final {
		if err := e.commitUnit(u); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	} else {
		var prev chan struct{}
		if n := len(w.commits); n > 0 {
			prev = w.commits[n-1]
		}
		done := make(chan struct{})
		w.commits = append(w.commits, done)
		w.inflight.Add(1)
		go func() {
			defer w.inflight.Done()
			defer close(done)
			if prev != nil {
				<-prev
			}
			if w.failed() != nil {
				return // never a unit after one that did not commit
			}
			if err := e.commitUnit(u); err != nil {
				w.errMu.Lock()
				if w.err == nil {
					w.err = fmt.Errorf("commit: %w", err)
				}
				w.errMu.Unlock()
			}
		}()
	}
	w.units++
	if w.units%refreshEvery == 0 || len(e.profiles) > profileCacheN {
		if err := w.wait(); err != nil {
			return err
		}
		w.snap.Discard()
		w.openSnapshot()
	}
	return nil
}

// commitUnit writes a flushed unit in one transaction (more when a unit
// outgrows Badger's limits: then it commits what it has and goes on). It
// encodes the unit's event and link values itself: nothing changes them
// once the unit is flushed, so this work, like the commit, runs beside the
// writer building the next unit rather than on its path.
func (e *Engine) commitUnit(u *unit) error {
	txn := e.db.NewTxn(true)
	defer func() { txn.Discard() }() // a no-op after Commit
	for _, d := range u.dels {
		if err := txn.Delete(d); err != nil {
			return err
		}
	}
	set := func(k, v []byte) error {
		err := txn.Set(k, v)
		if !errors.Is(err, store.ErrTxnTooBig) || u.noSplit {
			return err
		}
		// Units are sized well under Badger's limits (it counts entries,
		// and a value in the value log only by its pointer); one past them
		// is committed in parts.
		if err := txn.Commit(); err != nil {
			return err
		}
		txn = e.db.NewTxn(true)
		return txn.Set(k, v)
	}
	var scratch valueScratch
	for pid, b := range u.batches {
		if err := set(b.key(pid), b.value(&scratch, u.links[pid])); err != nil {
			return err
		}
	}
	for pid, lb := range u.links {
		if u.batches[pid] != nil {
			continue
		}
		if err := set(store.LinkBlockKey(pid, u.linkSeq), lb.value()); err != nil {
			return err
		}
	}
	for _, kv := range u.sets {
		if err := set(kv.k, kv.v); err != nil {
			return err
		}
	}
	return txn.Commit()
}

// plus returns c with d added. c is left alone: its Idents map may be
// shared with a reader (Stats), so it is never written in place.
func (c counters) plus(d counters) counters {
	out := c
	out.Profiles += d.Profiles
	out.Events += d.Events
	out.Merges += d.Merges
	out.Refused += d.Refused
	out.Blocked += d.Blocked
	out.Rejected += d.Rejected
	out.Suppressed += d.Suppressed
	out.Idents = make(map[string]int64, len(c.Idents)+len(d.Idents))
	for k, v := range c.Idents {
		out.Idents[k] = v
	}
	for k, v := range d.Idents {
		out.Idents[k] += v
	}
	return out
}

func (e *Engine) applyDelta(d counters) {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	e.counters = e.counters.plus(d)
}
