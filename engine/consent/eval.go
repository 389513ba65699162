package consent

import (
	"cmp"
	"slices"
	"time"
)

// Decision is the status in force for one purpose at some time.
type Decision struct {
	Purpose      string    `json:"purpose"`
	Status       string    `json:"status"`
	Default      bool      `json:"default"`                 // no record applied: the jurisdiction decided
	SourceRecord string    `json:"source_record,omitempty"` // "c42"; empty for a default
	Jurisdiction string    `json:"jurisdiction,omitempty"`
	LegalBasis   string    `json:"legal_basis,omitempty"`
	Source       string    `json:"source,omitempty"`
	Policy       string    `json:"policy_version,omitempty"`
	DecidedAt    time.Time `json:"decided_at,omitzero"`
}

// Consented reports whether the decision allows the purpose.
func (d Decision) Consented() bool { return d.Status == Granted }

// Newer orders two records for "newest decision wins": the later decision
// time, and for equal times the later recorded (higher sequence).
func Newer(a, b *Record) bool {
	if a.DecidedAt != b.DecidedAt {
		return a.DecidedAt > b.DecidedAt
	}
	return a.Seq > b.Seq
}

// SortTrail orders records by decision time, then sequence: the trail of
// a profile, whichever pids its records are stored under.
func SortTrail(recs []*Record) {
	slices.SortFunc(recs, func(a, b *Record) int {
		if c := cmp.Compare(a.DecidedAt, b.DecidedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
}

// ProfileJurisdiction is the jurisdiction that decides defaults for a
// profile: that of its newest record naming one, else the configured
// default.
func (c *Config) ProfileJurisdiction(recs []*Record, at time.Time) string {
	var best *Record
	for _, r := range recs {
		if r.Jurisdiction == "" || r.Source == "gpc" || r.DecidedAt > at.UnixNano() {
			continue
		}
		if best == nil || Newer(r, best) {
			best = r
		}
	}
	if best != nil {
		return Jurisdiction(best.Jurisdiction)
	}
	return Jurisdiction(c.DefaultJurisdiction)
}

// StateAt evaluates every configured purpose at time at from a profile's
// records (from all its member pids, in any order): the newest decision at
// or before at wins; with none, the jurisdiction's default applies. An
// empty jurisdiction means ProfileJurisdiction.
func (c *Config) StateAt(recs []*Record, at time.Time, jurisdiction string) map[string]Decision {
	if jurisdiction == "" {
		jurisdiction = c.ProfileJurisdiction(recs, at)
	}
	jurisdiction = Jurisdiction(jurisdiction)
	newest := make(map[string]*Record, len(c.Purposes))
	ns := at.UnixNano()
	for _, r := range recs {
		if r.DecidedAt > ns {
			continue
		}
		if cur := newest[r.Purpose]; cur == nil || Newer(r, cur) {
			newest[r.Purpose] = r
		}
	}
	out := make(map[string]Decision, len(c.Purposes))
	for _, p := range c.Purposes {
		r := newest[p]
		if r == nil {
			st := Denied
			if c.DefaultGranted(jurisdiction, p) {
				st = Granted
			}
			out[p] = Decision{Purpose: p, Status: st, Default: true, Jurisdiction: jurisdiction}
			continue
		}
		out[p] = decisionOf(r)
	}
	// Purposes recorded but no longer configured still show.
	for p, r := range newest {
		if _, ok := out[p]; !ok {
			out[p] = decisionOf(r)
		}
	}
	return out
}

func decisionOf(r *Record) Decision {
	return Decision{
		Purpose: r.Purpose, Status: r.Status, SourceRecord: RecordID(r.Seq),
		Jurisdiction: r.Jurisdiction, LegalBasis: r.LegalBasis, Source: r.Source, Policy: r.Policy,
		DecidedAt: time.Unix(0, r.DecidedAt).UTC(),
	}
}

// Current is the compact newest decision per purpose that ingest keeps in
// memory to record only changes.
type Current struct {
	Status    string
	DecidedAt int64
	Seq       uint64
}

// Fold updates cur with r when r is newer.
func Fold(cur map[string]Current, r *Record) {
	c, ok := cur[r.Purpose]
	if ok && (c.DecidedAt > r.DecidedAt || (c.DecidedAt == r.DecidedAt && c.Seq > r.Seq)) {
		return
	}
	cur[r.Purpose] = Current{Status: r.Status, DecidedAt: r.DecidedAt, Seq: r.Seq}
}

// Combine returns the newest decision for purpose across several pids'
// current states; ok is false when none has one.
func Combine(states []map[string]Current, purpose string) (Current, bool) {
	var best Current
	found := false
	for _, s := range states {
		c, ok := s[purpose]
		if !ok {
			continue
		}
		if !found || c.DecidedAt > best.DecidedAt || (c.DecidedAt == best.DecidedAt && c.Seq > best.Seq) {
			best, found = c, true
		}
	}
	return best, found
}

// Signal is one consent decision an event carries.
type Signal struct {
	Purpose      string
	Granted      bool   // for preferences and GPC; Consent Updated uses Status
	Status       string // explicit status (Consent Updated), else derived
	LegalBasis   string
	Jurisdiction string
	Source       string
	Policy       string
	Evidence     string
	ChangeOnly   bool // record only when it changes the decision in force
}

// ChangeStatus decides what to record for a signal given the decision in
// force (ok false: none): "" means nothing changes. A refusal after a grant
// is a withdrawal; a refusal with no grant before is a denial.
func ChangeStatus(s Signal, cur Current, ok bool) string {
	st := s.Status
	if st == "" {
		switch {
		case s.Granted:
			st = Granted
		case ok && cur.Status == Granted:
			st = Withdrawn
		default:
			st = Denied
		}
	}
	if s.ChangeOnly && ok {
		same := cur.Status == st || (st != Granted && cur.Status != Granted)
		if same {
			return ""
		}
	}
	return st
}
