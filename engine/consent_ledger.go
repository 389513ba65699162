package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loupe-cdp/loupe/engine/consent"
	"github.com/loupe-cdp/loupe/engine/segment"
	"github.com/loupe-cdp/loupe/store"
)

// ConsentDecision is the status in force for one purpose.
type ConsentDecision = consent.Decision

// ConsentReceipt is a Kantara Consent Receipt v1.1-shaped document.
type ConsentReceipt = consent.Receipt

// ConsentBreak is one place where a chain does not verify.
type ConsentBreak = consent.Break

// ConsentRecord is one record of a profile's consent trail.
type ConsentRecord struct {
	ID            string    `json:"id"`      // "c42"
	Profile       string    `json:"profile"` // the profile it was recorded for
	StoredUnder   string    `json:"stored_under"`
	Purpose       string    `json:"purpose"`
	Status        string    `json:"status"`
	LegalBasis    string    `json:"legal_basis"`
	Jurisdiction  string    `json:"jurisdiction,omitempty"`
	Source        string    `json:"source"`
	PolicyVersion string    `json:"policy_version,omitempty"`
	Evidence      string    `json:"evidence,omitempty"`
	IPHash        string    `json:"ip_hash,omitempty"`
	MessageID     string    `json:"message_id,omitempty"`
	DecidedAt     time.Time `json:"decided_at"`
	RecordedAt    time.Time `json:"recorded_at"`
	Hash          string    `json:"hash"`
	Prev          string    `json:"prev,omitempty"`
}

// ConsentInput is a decision recorded by hand (`loupe consent set`).
type ConsentInput struct {
	Purpose      string
	Status       string // granted, denied, withdrawn
	LegalBasis   string // default consent
	Jurisdiction string
	Source       string // default support
	Policy       string
	Evidence     string
	IP           string    // stored only as a salted hash
	DecidedAt    time.Time // default now
}

// ConsentVerifyResult is the outcome of verifying both consent chains.
type ConsentVerifyResult struct {
	OK      bool           `json:"ok"`
	Records int            `json:"records"`
	Breaks  []ConsentBreak `json:"breaks"`
}

// ConsentConfiguration is the compiled consent configuration in use.
func (e *Engine) ConsentConfiguration() (ConsentConfig, error) {
	c, err := e.compl()
	if err != nil {
		return ConsentConfig{}, err
	}
	return c.cfg, nil
}

// loadHead reads the global chain head once. Caller holds writeMu.
func (c *compliance) loadHead(e *Engine) error {
	if c.headLoaded {
		return nil
	}
	return e.db.View(func(t *store.Txn) error {
		b, err := t.Get(store.ConsentHeadKey())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		h, err := consent.ParseHead(b)
		if err != nil {
			return err
		}
		c.global, c.headLoaded = h, true
		return nil
	})
}

// pidState returns the cached consent state of records stored under pid,
// reading it from the store on a miss. Caller holds writeMu.
func (c *compliance) pidState(e *Engine, pid uint64) (*pidConsent, error) {
	if pc, ok := c.pids[pid]; ok {
		return pc, nil
	}
	pc := &pidConsent{cur: map[string]consent.Current{}}
	view := e.db.View
	if c.readTxn != nil {
		view = func(fn func(*store.Txn) error) error { return fn(c.readTxn) }
	}
	err := view(func(t *store.Txn) error {
		var err error
		pc.head, err = scanChain(t, pid, func(r *consent.Record) { consent.Fold(pc.cur, r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("consent state of %s: %w", pidString(pid), err)
	}
	c.pids[pid] = pc
	return pc, nil
}

// appendRecord gives r its sequence number and chain links and writes it
// (record, global chain entry, both heads) through set. Caller holds
// writeMu; the caches move ahead with the write.
func (c *compliance) appendRecord(e *Engine, pid uint64, r *consent.Record, out consentSink) error {
	if err := c.loadHead(e); err != nil {
		return err
	}
	pc, err := c.pidState(e, pid)
	if err != nil {
		return err
	}
	r.Seq = c.global.Seq + 1
	r.PID = pid
	r.Prev = ""
	if pc.head.Seq != 0 {
		r.Prev = pc.head.Hash.String()
	}
	b, h, err := consent.Encode(r)
	if err != nil {
		return err
	}
	g := consent.NextGlobal(c.global.Hash, h)
	gh := consent.Head{Seq: r.Seq, Hash: g}
	ph := consent.Head{Seq: r.Seq, Hash: h}
	if err := out.record(pid, r.Seq, b); err != nil {
		return err
	}
	if err := out.chainEntry(r.Seq, consent.ChainEntry{Record: h, Chain: g}); err != nil {
		return err
	}
	if err := out.heads(gh, pid, ph); err != nil {
		return err
	}
	c.global, pc.head = gh, ph
	consent.Fold(pc.cur, r)
	c.notePIDs(pid)
	return nil
}

// consentSink takes what appendRecord writes: records (the stored bytes
// of record seq, to be stored under pid), entries of the global chain,
// which are stored in blocks of consecutive entries, and the heads of the
// global chain and of pid's chain after the record.
type consentSink interface {
	record(pid, seq uint64, stored []byte) error
	chainEntry(seq uint64, e consent.ChainEntry) error
	heads(global consent.Head, pid uint64, profile consent.Head) error
}

// txnSink writes straight into a transaction, each record under a key of
// its own and each chain entry a block of its own.
type txnSink struct{ t *store.Txn }

func (s txnSink) record(pid, seq uint64, stored []byte) error {
	return s.t.Set(store.ConsentKey(pid, seq), stored)
}

func (s txnSink) chainEntry(seq uint64, e consent.ChainEntry) error {
	return s.t.Set(store.ConsentChainKey(seq), consent.AppendChainEntry(nil, e))
}

func (s txnSink) heads(global consent.Head, pid uint64, profile consent.Head) error {
	if err := s.t.Set(store.ConsentHeadKey(), global.Bytes()); err != nil {
		return err
	}
	return s.t.Set(store.ConsentProfileHeadKey(pid), profile.Bytes())
}

// An ingest unit gathers each profile's records into one block
// (consent.AppendBlockRecord) and its chain entries into one block, written
// by flush under the first one's sequence number, and keeps only the last
// of each head: a unit's consent records move the global head many times
// and a profile's several times (a banner decides every purpose at once).
func (u *unit) record(pid, seq uint64, stored []byte) error {
	b := u.consentOf(pid)
	if len(b.b) == 0 {
		b.first = seq
	}
	b.b = consent.AppendBlockRecord(b.b, seq, stored)
	u.bytes += len(stored)
	return nil
}

func (u *unit) heads(global consent.Head, pid uint64, profile consent.Head) error {
	u.consentHead = global
	u.consentOf(pid).head = profile
	return nil
}

// recordBlock is what a unit writes of one profile's consent chain: the
// records it adds, and the chain's head after the last.
type recordBlock struct {
	first uint64 // the first record's sequence number: the block's key
	b     []byte
	head  consent.Head
}

func (u *unit) consentOf(pid uint64) *recordBlock {
	if u.consent == nil {
		u.consent = make(map[uint64]*recordBlock)
	}
	b := u.consent[pid]
	if b == nil {
		b = &recordBlock{}
		u.consent[pid] = b
	}
	return b
}

func (u *unit) chainEntry(seq uint64, e consent.ChainEntry) error {
	if len(u.chain) == 0 {
		u.chainFirst = seq
	} else if n := uint64(len(u.chain)-1) / consent.ChainEntrySize; seq != u.chainFirst+n {
		return fmt.Errorf("consent chain entry %d does not follow %d in its block", seq, u.chainFirst+n-1)
	}
	u.chain = consent.AppendChainEntry(u.chain, e)
	return nil
}

// states are the consent states of a profile's member pids, as ingest
// sees them, for consent.Combine. They are the cached maps themselves, so
// records appended after the call show in them. Caller holds writeMu.
func (c *compliance) states(e *Engine, pids []uint64) ([]map[string]consent.Current, error) {
	states := make([]map[string]consent.Current, 0, len(pids))
	for _, p := range pids {
		pc, err := c.pidState(e, p)
		if err != nil {
			return nil, err
		}
		states = append(states, pc.cur)
	}
	return states, nil
}

// hasConsentSignal is the per-event fast check: a few map lookups.
func hasConsentSignal(ev *segment.Event) bool {
	if isConsentUpdated(ev) {
		return true
	}
	if ev.Context.Consent != nil {
		return true
	}
	g, _ := ev.Context.GPC.(bool)
	return g
}

// consentPrep is the part of recording an event's consent decisions that
// needs neither the store nor the ledger's state: the signals it carries
// (read-only: they may be shared with other events, signalCache) and its
// IP address. The ingest's parse workers compute it in parallel
// (prepareConsent); the writer does the rest in order, hashing the address
// only for an event that records a decision (most signals change nothing).
type consentPrep struct {
	done bool
	sigs []consent.Signal
	ip   string
}

// prepareConsent computes ev's consentPrep, through sc when not nil (one
// per goroutine). It is safe for concurrent use; if the consent
// configuration does not load, it leaves the work (and the error) to
// consentOnEvent.
func (e *Engine) prepareConsent(ev *segment.Event, sc *signalCache) consentPrep {
	if !hasConsentSignal(ev) {
		return consentPrep{done: true}
	}
	c, err := e.compl()
	if err != nil {
		return consentPrep{}
	}
	p := consentPrep{done: true}
	if sc != nil && !isConsentUpdated(ev) {
		p.sigs = sc.signals(&c.cfg, ev)
	} else {
		p.sigs = eventSignals(&c.cfg, ev)
	}
	if len(p.sigs) > 0 {
		p.ip = ev.IPAddress()
	}
	return p
}

func isConsentUpdated(ev *segment.Event) bool {
	return ev.Type == "track" && ev.Event == "Consent Updated"
}

// signalCache remembers the signals of the banner decisions a parse worker
// has seen. Nearly every event of a visitor with a banner decision carries
// it, and visitors share a few dozen combinations of categories, choices,
// jurisdiction and policy version: working the signals out again for each
// event allocated ~600 bytes and took 4 CPU-s of the 1M demo ingest. It is
// not safe for concurrent use.
type signalCache struct {
	key  []byte
	sigs map[string][]consent.Signal
}

// signalCacheMax bounds a cache fed with ever new combinations.
const signalCacheMax = 4096

// signals returns eventSignals(cfg, ev) for an event that is not a
// Consent Updated track, whose signals come only from its context.
func (sc *signalCache) signals(cfg *consent.Config, ev *segment.Event) []consent.Signal {
	// The key: everything eventSignals reads, context.consent as sent. The
	// same choices sent with their members in another order, or spaced
	// otherwise, make another key for the same signals.
	key := strconv.AppendBool(sc.key[:0], ev.GPC())
	key = append(key, ev.Context.Consent...)
	sc.key = key
	if sigs, ok := sc.sigs[string(key)]; ok {
		return sigs
	}
	if sc.sigs == nil || len(sc.sigs) >= signalCacheMax {
		sc.sigs = make(map[string][]consent.Signal)
	}
	sigs := eventSignals(cfg, ev)
	sc.sigs[string(key)] = sigs
	return sigs
}

// consentOnEvent records the consent decisions an ingested event carries
// (a `Consent Updated` track, context.consent.categoryPreferences, the
// context.gpc Global Privacy Control signal) for profile pid, writing into
// the event's unit. It is the ingest hook (hooks.go onEvent); the writer
// holds writeMu. prep is the event's consentPrep, computed here when the
// caller has not.
func (e *Engine) consentOnEvent(u *unit, pid uint64, ev *segment.Event, prep *consentPrep) error {
	if !prep.done { // the event has a consent signal and the configuration did not load
		if _, err := e.compl(); err != nil {
			return err
		}
		*prep = e.prepareConsent(ev, nil)
	}
	if len(prep.sigs) == 0 {
		return nil
	}
	c, err := e.compl()
	if err != nil {
		return err
	}
	c.readTxn = u.snap
	defer func() { c.readTxn = nil }()
	if _, ok := c.pids[pid]; !ok && pid > u.freshFrom {
		// Created by this ingest: no trail in the store to read.
		c.pids[pid] = &pidConsent{cur: map[string]consent.Current{}}
	}
	pids := []uint64{pid}
	if p := e.profiles[pid]; p != nil && p != deletedProfile {
		pids = append(pids, p.Merged...)
	}
	now := e.now().UnixNano()
	// Gathered once for the event's signals (one per purpose): each record
	// appended below updates its pid's map in place.
	states, err := c.states(e, pids)
	if err != nil {
		return err
	}
	ipHash := ""
	for _, s := range prep.sigs {
		cur, ok := consent.Combine(states, s.Purpose)
		st := consent.ChangeStatus(s, cur, ok)
		if st == "" {
			continue
		}
		if ipHash == "" && prep.ip != "" {
			h := c.ipHashers.Get().(*consent.IPHasher)
			ipHash = h.Sum(prep.ip)
			c.ipHashers.Put(h)
		}
		if s.ChangeOnly && s.Source == "banner" {
			s.Evidence += "=" + strconv.FormatBool(s.Granted)
		}
		r := &consent.Record{
			Purpose: s.Purpose, Status: st, LegalBasis: s.LegalBasis, Jurisdiction: s.Jurisdiction,
			Source: s.Source, Policy: s.Policy, Evidence: s.Evidence, IPHash: ipHash, MessageID: ev.MessageID,
			DecidedAt: ev.Timestamp.UnixNano(), RecordedAt: now,
		}
		if err := c.appendRecord(e, pid, r, u); err != nil {
			return err
		}
	}
	return nil
}

// signalFor is the index of purpose's signal in sigs, or -1.
func signalFor(sigs []consent.Signal, purpose string) int {
	for i := range sigs {
		if sigs[i].Purpose == purpose {
			return i
		}
	}
	return -1
}

// eventSignals reads the consent decisions an event carries.
func eventSignals(cfg *consent.Config, ev *segment.Event) []consent.Signal {
	var out []consent.Signal
	if isConsentUpdated(ev) {
		p := ev.PropertyMap()
		str := func(k string) string { s, _ := p[k].(string); return strings.TrimSpace(s) }
		s := consent.Signal{
			Purpose: str("purpose"), Status: strings.ToLower(str("status")), LegalBasis: str("legal_basis"),
			Jurisdiction: consent.Jurisdiction(str("jurisdiction")), Source: str("source"), Policy: str("policy_version"),
			Evidence: "Consent Updated event",
		}
		if s.LegalBasis == "" {
			s.LegalBasis = "consent"
		}
		if s.Source == "" {
			s.Source = "event"
		}
		r := consent.Record{Purpose: s.Purpose, Status: s.Status, LegalBasis: s.LegalBasis, Source: s.Source, DecidedAt: 1}
		if cfg.Validate(&r) == nil {
			out = append(out, s)
		}
	}
	if prefs, ok := ev.ConsentPreferences(); ok && len(prefs) > 0 {
		cm := ev.ConsentObject()
		jur, _ := cm["jurisdiction"].(string)
		pol, _ := cm["policyVersion"].(string)
		// Every page view of a visitor with preferences carries them, so
		// this runs for most events: out is sized once for the usual
		// purpose per category (and GPC), and purposes are found by a scan
		// of the few signals so far, not a map.
		cats := make([]string, 0, len(prefs))
		for k := range prefs {
			cats = append(cats, k)
		}
		slices.Sort(cats)
		out = slices.Grow(out, len(cats)+1)
		first := len(out)
		for _, cat := range cats {
			for _, p := range cfg.CategoryPurposes(cat) {
				ev := "categoryPreferences." + cat // "=true/false" is added when recorded
				if i := signalFor(out[first:], p); i >= 0 {
					// Two categories for one purpose: a refusal wins.
					if !prefs[cat] {
						out[first+i].Granted, out[first+i].Evidence = false, ev
					}
					continue
				}
				out = append(out, consent.Signal{
					Purpose: p, Granted: prefs[cat], LegalBasis: "consent", Jurisdiction: consent.Jurisdiction(jur),
					Source: "banner", Policy: pol, Evidence: ev, ChangeOnly: true,
				})
			}
		}
	}
	if ev.GPC() && cfg.HasPurpose(consent.SaleOrSharing) {
		out = append(out, consent.Signal{
			Purpose: consent.SaleOrSharing, Granted: false, LegalBasis: "consent", Jurisdiction: consent.Jurisdiction(cfg.GPCJurisdiction),
			Source: "gpc", Evidence: "context.gpc=true (Global Privacy Control)", ChangeOnly: true,
		})
	}
	return out
}

// SetConsent records a decision by hand for the profile REF names.
func (e *Engine) SetConsent(ctx context.Context, ref string, in ConsentInput) (ConsentRecord, error) {
	if err := ctx.Err(); err != nil {
		return ConsentRecord{}, err
	}
	c, err := e.compl()
	if err != nil {
		return ConsentRecord{}, err
	}
	if in.LegalBasis == "" {
		in.LegalBasis = "consent"
	}
	if in.Source == "" {
		in.Source = "support"
	}
	now := e.now()
	if in.DecidedAt.IsZero() {
		in.DecidedAt = now
	}
	r := &consent.Record{
		Purpose: strings.TrimSpace(in.Purpose), Status: strings.ToLower(strings.TrimSpace(in.Status)),
		LegalBasis: in.LegalBasis, Jurisdiction: consent.Jurisdiction(in.Jurisdiction), Source: in.Source,
		Policy: in.Policy, Evidence: in.Evidence, IPHash: consent.HashIP(c.secret, in.IP),
		DecidedAt: in.DecidedAt.UnixNano(), RecordedAt: now.UnixNano(),
	}
	if err := c.cfg.Validate(r); err != nil {
		return ConsentRecord{}, fmt.Errorf("consent set: %w", err)
	}
	e.writeMu.Lock()
	var pid uint64
	err = e.db.Update(func(t *store.Txn) error {
		var err error
		if pid, err = e.resolve(t, ref); err != nil {
			return err
		}
		return c.appendRecord(e, pid, r, txnSink{t})
	})
	if err != nil {
		// The caches may have moved ahead of what committed.
		c.headLoaded = false
		c.forgetConsent(pid)
		e.writeMu.Unlock()
		return ConsentRecord{}, fmt.Errorf("consent set: %w", err)
	}
	e.writeMu.Unlock()
	e.snapshotTouch(pid)
	_, h, _ := consent.Encode(r)
	out := exportConsent(r, pid, h)
	if err := e.Audit(ctx, AuditConsentSet, pidString(pid), fmt.Sprintf("%s %s %s (%s)", out.ID, r.Purpose, r.Status, r.Source)); err != nil {
		return out, err
	}
	return out, nil
}

func exportConsent(r *consent.Record, keyPID uint64, h consent.Hash) ConsentRecord {
	return ConsentRecord{
		ID: consent.RecordID(r.Seq), Profile: pidString(r.PID), StoredUnder: pidString(keyPID),
		Purpose: r.Purpose, Status: r.Status, LegalBasis: r.LegalBasis, Jurisdiction: r.Jurisdiction,
		Source: r.Source, PolicyVersion: r.Policy, Evidence: r.Evidence, IPHash: r.IPHash, MessageID: r.MessageID,
		DecidedAt: unixTime(r.DecidedAt), RecordedAt: unixTime(r.RecordedAt), Hash: h.String(), Prev: r.Prev,
	}
}

type trailRec struct {
	rec    *consent.Record
	keyPID uint64
	hash   consent.Hash
}

// trail reads the live records stored under every member pid of pid.
func (e *Engine) trail(t *store.Txn, pid uint64) ([]trailRec, error) {
	pids, err := e.memberPIDs(t, pid)
	if err != nil {
		return nil, err
	}
	var out []trailRec
	for _, m := range pids {
		err := eachConsentRecord(t, m, func(s consent.Stored) {
			out = append(out, trailRec{s.Record, m, s.Hash})
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b trailRec) int {
		if a.rec.DecidedAt != b.rec.DecidedAt {
			return int(max(-1, min(1, a.rec.DecidedAt-b.rec.DecidedAt)))
		}
		return int(int64(a.rec.Seq) - int64(b.rec.Seq))
	})
	return out, nil
}

func records(tr []trailRec) []*consent.Record {
	out := make([]*consent.Record, len(tr))
	for i := range tr {
		out[i] = tr[i].rec
	}
	return out
}

// ConsentState is the decision in force at time at for every configured
// purpose of the profile REF names (a profile id or TYPE:VALUE): the
// newest decision at or before at across the records of the profile and
// of every profile merged into it; with none, the jurisdiction's default
// (Default true). jurisdiction "" uses the profile's own.
func (e *Engine) ConsentState(ctx context.Context, ref string, at time.Time) (map[string]ConsentDecision, error) {
	_, st, err := e.ConsentAt(ctx, ref, at, "")
	return st, err
}

// ConsentAt is ConsentState with the resolved profile id and an optional
// jurisdiction override.
func (e *Engine) ConsentAt(ctx context.Context, ref string, at time.Time, jurisdiction string) (string, map[string]ConsentDecision, error) {
	c, err := e.compl()
	if err != nil {
		return "", nil, err
	}
	var pid uint64
	var tr []trailRec
	err = e.db.View(func(t *store.Txn) error {
		var err error
		if pid, err = e.resolve(t, ref); err != nil {
			return err
		}
		tr, err = e.trail(t, pid)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return pidString(pid), c.cfg.StateAt(records(tr), at, jurisdiction), ctx.Err()
}

// Consented reports whether purpose is consented for the profile now.
func (e *Engine) Consented(ctx context.Context, ref, purpose string) (bool, error) {
	st, err := e.ConsentState(ctx, ref, e.now())
	if err != nil {
		return false, err
	}
	return st[purpose].Consented(), nil
}

// ConsentHistory lists a profile's trail in decision-time order (all
// member pids; purpose "" for every purpose).
func (e *Engine) ConsentHistory(ctx context.Context, ref, purpose string) ([]ConsentRecord, error) {
	out := []ConsentRecord{}
	err := e.db.View(func(t *store.Txn) error {
		pid, err := e.resolve(t, ref)
		if err != nil {
			return err
		}
		tr, err := e.trail(t, pid)
		if err != nil {
			return err
		}
		for _, x := range tr {
			if purpose == "" || x.rec.Purpose == purpose {
				out = append(out, exportConsent(x.rec, x.keyPID, x.hash))
			}
		}
		return nil
	})
	return out, err
}

// ConsentReceiptFor builds the consent receipt of a profile (purpose "" for
// all purposes).
func (e *Engine) ConsentReceiptFor(ctx context.Context, ref, purpose string) (ConsentReceipt, error) {
	c, err := e.compl()
	if err != nil {
		return ConsentReceipt{}, err
	}
	if purpose != "" && !c.cfg.HasPurpose(purpose) {
		return ConsentReceipt{}, fmt.Errorf("unknown purpose %q", purpose)
	}
	var out ConsentReceipt
	err = e.db.View(func(t *store.Txn) error {
		pid, err := e.resolve(t, ref)
		if err != nil {
			return err
		}
		tr, err := e.trail(t, pid)
		if err != nil {
			return err
		}
		hashes := make(map[uint64]consent.Hash, len(tr))
		for _, x := range tr {
			hashes[x.rec.Seq] = x.hash
		}
		out = c.cfg.BuildReceipt(pidString(pid), records(tr), hashes, purpose, e.now())
		return nil
	})
	return out, err
}

// VerifyConsent recomputes the global chain and every profile chain from
// the stored bytes and names each break.
func (e *Engine) VerifyConsent(ctx context.Context) (ConsentVerifyResult, error) {
	v := consent.NewVerifier()
	var head []byte
	heads := map[uint64]consent.Head{} // each profile chain's newest stored head
	var headBreaks []ConsentBreak
	newer := func(pid uint64, h consent.Head) {
		if h.Seq >= heads[pid].Seq {
			heads[pid] = h
		}
	}
	err := e.db.View(func(t *store.Txn) error {
		n := 0
		if err := t.Iterate([]byte{store.PrefixConsent}, store.IterOptions{}, func(k, val []byte) error {
			pid, seq, err := store.ParseConsentKey(k)
			if err != nil {
				return fmt.Errorf("consent key %x: %w", k, err)
			}
			if err := consent.EachStored(seq, val, func(seq uint64, b []byte) error {
				v.AddRecord(pid, seq, b)
				return nil
			}); err != nil {
				v.AddRecord(pid, seq, val) // a damaged block: a break of its own
			}
			if n++; n%65536 == 0 {
				return ctx.Err()
			}
			return nil
		}); err != nil {
			return err
		}
		if err := t.Iterate([]byte{store.PrefixConsentChain}, store.IterOptions{}, func(k, val []byte) error {
			if len(k) != 9 {
				return fmt.Errorf("consent chain key %x: %w", k, store.ErrBadKey)
			}
			v.AddChainBlock(store.Uint64(k, 1), val)
			return nil
		}); err != nil {
			return err
		}
		var err error
		if head, err = t.Get(store.ConsentHeadKey()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// A chain's head is in the head block of the last ingest unit
		// that extended it, or under its own key (set by hand, or by
		// unmerge), whichever is newer.
		if err := t.Iterate([]byte{store.PrefixConsentHeads}, store.IterOptions{}, func(k, val []byte) error {
			if err := consent.EachHead(val, newer); err != nil {
				headBreaks = append(headBreaks, ConsentBreak{Chain: "profile", Record: consent.RecordID(store.Uint64(k, 1)), What: err.Error()})
			}
			return nil
		}); err != nil {
			return err
		}
		prefix := store.ConsentProfileHeadPrefix()
		return t.Iterate(prefix, store.IterOptions{}, func(k, val []byte) error {
			if len(k) != len(prefix)+8 {
				return nil
			}
			h, err := consent.ParseHead(val)
			if err != nil {
				headBreaks = append(headBreaks, ConsentBreak{Chain: "profile", Profile: pidString(store.Uint64(k, len(prefix))), What: err.Error()})
				return nil
			}
			newer(store.Uint64(k, len(prefix)), h)
			return nil
		})
	})
	if err != nil {
		return ConsentVerifyResult{}, fmt.Errorf("consent verify: %w", err)
	}
	br := append(v.Finish(head, heads), headBreaks...)
	if br == nil {
		br = []ConsentBreak{}
	}
	return ConsentVerifyResult{OK: len(br) == 0, Records: v.Records(), Breaks: br}, nil
}

// moveConsent moves the consent records stored under pid from that were
// made from the events unmerge moves (to maps messageId to the event's new
// pid): the unmerge hook (hooks.go moveEventsHook), inside the unmerge
// transaction, with writeMu held. The records keep their bytes and so their
// place in both chains; records of events that stay, and those set by hand,
// stay.
func (e *Engine) moveConsent(t *store.Txn, from uint64, to map[string]uint64) error {
	type move struct {
		seq, to, chain uint64
		stored         []byte
	}
	var moves []move
	var rewrites []kv // a value's new form, nil when none of it stays
	err := t.Iterate(store.ConsentPrefix(from), store.IterOptions{}, func(k, v []byte) error {
		var these []move
		kept, err := consent.RewriteStored(store.Uint64(k, 9), v, func(seq uint64, b []byte) ([]byte, error) {
			s, err := consent.Decode(b)
			if err == nil && s.Record != nil && s.Record.MessageID != "" {
				if p, ok := to[s.Record.MessageID]; ok && p != from {
					these = append(these, move{seq, p, s.Record.PID, slices.Clone(b)})
					return nil, nil
				}
			}
			// Stubs and corrupt records stay; verify reports the latter.
			return b, nil
		})
		if err != nil || len(these) == 0 {
			return nil // a damaged block stays whole, for verify to report
		}
		moves = append(moves, these...)
		rewrites = append(rewrites, kv{slices.Clone(k), kept})
		return nil
	})
	if err != nil || len(moves) == 0 {
		return err
	}
	if c, err := e.compl(); err == nil {
		c.forgetConsent(from)
		for _, m := range moves {
			c.forgetConsent(m.to)
			c.notePIDs(m.to)
		}
	}
	// Records of from's own chain that leave its key would take the
	// chain's head with them (scanChain finds it among the records under
	// from): it is stored under from's head key first.
	if slices.ContainsFunc(moves, func(m move) bool { return m.chain == from }) {
		h, err := scanChain(t, from, nil)
		if err != nil {
			return err
		}
		if err := t.Set(store.ConsentProfileHeadKey(from), h.Bytes()); err != nil {
			return err
		}
	}
	for _, r := range rewrites {
		if err := r.apply(t); err != nil {
			return err
		}
	}
	for _, m := range moves {
		if err := t.Set(store.ConsentKey(m.to, m.seq), m.stored); err != nil {
			return err
		}
	}
	return nil
}

// scanChain reads the records stored under pid, calling fold (when not
// nil) with each live one, and returns the head of pid's chain: its
// newest record, a stub too. An ingest stores a chain's head only in its
// unit's head block, for verify; the records under pid hold the chain,
// but for those unmerge moved to another pid, whose head it stores under
// pid's own head key (moveConsent), as `consent set` does. Records that
// do not decode are skipped; verify reports them.
func scanChain(t *store.Txn, pid uint64, fold func(*consent.Record)) (consent.Head, error) {
	b, err := t.Get(store.ConsentProfileHeadKey(pid))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return consent.Head{}, err
	}
	head, err := consent.ParseHead(b)
	if err != nil {
		return consent.Head{}, err
	}
	err = eachStoredUnder(t, pid, func(s consent.Stored) {
		if s.Record != nil && fold != nil {
			fold(s.Record)
		}
		if s.PID() == pid && s.Seq() > head.Seq {
			head = consent.Head{Seq: s.Seq(), Hash: s.Hash}
		}
	})
	return head, err
}

// eachConsentRecord calls fn with every live record stored under pid, in
// key order; stubs decide nothing.
func eachConsentRecord(t *store.Txn, pid uint64, fn func(s consent.Stored)) error {
	return eachStoredUnder(t, pid, func(s consent.Stored) {
		if s.Record != nil {
			fn(s)
		}
	})
}

// eachStoredUnder calls fn with every record and stub stored under pid,
// alone or in a block (consent.EachStored), in key order. Records that do
// not decode, and what follows the damage in a block, are skipped: verify
// reports them.
func eachStoredUnder(t *store.Txn, pid uint64, fn func(s consent.Stored)) error {
	return t.Iterate(store.ConsentPrefix(pid), store.IterOptions{}, func(k, v []byte) error {
		err := consent.EachStored(store.Uint64(k, 9), v, func(_ uint64, b []byte) error {
			if s, err := consent.Decode(b); err == nil {
				fn(s)
			}
			return nil
		})
		if errors.Is(err, consent.ErrCorrupt) {
			return nil
		}
		return err
	})
}
