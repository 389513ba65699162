package engine

import (
	"slices"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/engine/segment"
)

// profileRec is a profile as the engine holds it; record_codec.go has its
// stored form (value of 'p' pid). Times are Unix nanoseconds. The JSON tags
// read records of the first, JSON, layout.
type profileRec struct {
	PID     uint64               `json:"-"`
	Merged  []uint64             `json:"m,omitempty"`
	IDs     []identRec           `json:"i"`
	Blocked []blockedRec         `json:"b,omitempty"`
	Traits  map[string]*traitRec `json:"t,omitempty"`
	Events  map[string]*eventRec `json:"e,omitempty"`
	Count   int64                `json:"n"`
	First   int64                `json:"f"`
	Last    int64                `json:"l"`
}

type identRec struct {
	T string `json:"t"`
	V string `json:"v"`
	F int64  `json:"f"`
	L int64  `json:"l"`
}

type blockedRec struct {
	T string `json:"t"`
	V string `json:"v"`
	N int64  `json:"n"`
}

type traitVal struct {
	V any    `json:"v"`
	T int64  `json:"t"`
	M string `json:"m,omitempty"`
	S string `json:"s,omitempty"` // "" = event, "rectification"
	R string `json:"r,omitempty"`
}

type traitRec struct {
	traitVal
	H []traitVal `json:"h,omitempty"` // earlier values, newest first
}

type eventRec struct {
	N int64              `json:"n"`
	F int64              `json:"f"`
	L int64              `json:"l"`
	S map[string]float64 `json:"s,omitempty"`
	// R are the most recent occurrences (Unix seconds, oldest first) and RV
	// the summed properties' values aligned with R (0 where absent).
	R  []int64              `json:"r,omitempty"`
	RV map[string][]float64 `json:"rv,omitempty"`
}

// pidString is the text form of a profile id.
func pidString(pid uint64) string { return "p" + strconv.FormatUint(pid, 10) }

// parsePID reads "p123".
func parsePID(s string) (uint64, bool) {
	if len(s) < 2 || s[0] != 'p' {
		return 0, false
	}
	n, err := strconv.ParseUint(s[1:], 10, 64)
	return n, err == nil && n > 0
}

// countOf counts identifiers of a type.
func (p *profileRec) countOf(typ string) int {
	n := 0
	for i := range p.IDs {
		if p.IDs[i].T == typ {
			n++
		}
	}
	return n
}

// first returns the first value of an identifier type, "" if none.
func (p *profileRec) first(typ string) string {
	for i := range p.IDs {
		if p.IDs[i].T == typ {
			return p.IDs[i].V
		}
	}
	return ""
}

func (p *profileRec) touchID(id identity.ID, t int64) {
	for i := range p.IDs {
		if p.IDs[i].T == id.Type && p.IDs[i].V == id.Value {
			p.IDs[i].F = min(p.IDs[i].F, t)
			p.IDs[i].L = max(p.IDs[i].L, t)
			return
		}
	}
	p.IDs = append(p.IDs, identRec{T: id.Type, V: id.Value, F: t, L: t})
}

const maxBlockedPerProfile = 32

func (p *profileRec) touchBlocked(id identity.ID) {
	for i := range p.Blocked {
		if p.Blocked[i].T == id.Type && p.Blocked[i].V == id.Value {
			p.Blocked[i].N++
			return
		}
	}
	if len(p.Blocked) < maxBlockedPerProfile {
		p.Blocked = append(p.Blocked, blockedRec{T: id.Type, V: id.Value, N: 1})
	}
}

// eventName is the name an event is aggregated under: the track event
// name, "Page Viewed" for page and "Screen Viewed" for screen. Identify,
// group and alias are counted in Count but not aggregated by name.
func eventName(ev *segment.Event) string {
	switch ev.Type {
	case "track":
		return ev.Event
	case "page":
		return "Page Viewed"
	case "screen":
		return "Screen Viewed"
	}
	return ""
}

// fold applies one event to the profile.
// fold adds event ev to the profile. sums holds the values of the event's
// properties named in cfg.SumProperties, in that order (summedProperties).
func (p *profileRec) fold(ev *segment.Event, sums []any, kept, blocked []identity.ID, cfg *ProfileConfig) {
	t := ev.Timestamp.UnixNano()
	if p.Count == 0 || t < p.First {
		p.First = t
	}
	if p.Count == 0 || t > p.Last {
		p.Last = t
	}
	p.Count++
	for _, id := range kept {
		p.touchID(id, t)
	}
	for _, id := range blocked {
		p.touchBlocked(id)
	}
	if ev.Type == "identify" {
		for k, v := range ev.Traits {
			p.setTrait(k, traitVal{V: v, T: t, M: ev.MessageID}, cfg.TraitHistory)
		}
	}
	if name := eventName(ev); name != "" {
		if p.Events == nil {
			p.Events = make(map[string]*eventRec, 4)
		}
		er := p.Events[name]
		if er == nil {
			er = &eventRec{F: t, L: t}
			p.Events[name] = er
		}
		er.add(t, sums, cfg)
	}
}

// summedProperties reads the values of ev's properties named in
// cfg.SumProperties, for fold. The parse workers call it during ingest.
func summedProperties(ev *segment.Event, cfg *ProfileConfig) []any {
	return ev.PropertyValues(cfg.SumProperties)
}

func (er *eventRec) add(t int64, sums []any, cfg *ProfileConfig) {
	er.N++
	er.F = min(er.F, t)
	er.L = max(er.L, t)
	sec := t / int64(time.Second)
	// Keep R sorted: events mostly arrive in order, so search from the end.
	i := len(er.R)
	for i > 0 && er.R[i-1] > sec {
		i--
	}
	er.R = slices.Insert(er.R, i, sec)
	for name, vals := range er.RV {
		er.RV[name] = slices.Insert(vals, i, 0)
	}
	for j, prop := range cfg.SumProperties {
		if j >= len(sums) {
			break
		}
		v, ok := number(sums[j])
		if !ok {
			continue
		}
		if er.S == nil {
			er.S = make(map[string]float64, 1)
		}
		er.S[prop] += v
		if er.RV == nil {
			er.RV = make(map[string][]float64, 1)
		}
		vals, ok := er.RV[prop]
		if !ok {
			vals = make([]float64, len(er.R))
		}
		vals[i] = v
		er.RV[prop] = vals
	}
	er.trim(cfg.RecentPerEvent)
}

// trim keeps the newest max occurrences.
func (er *eventRec) trim(keep int) {
	if keep <= 0 || len(er.R) <= keep {
		return
	}
	cut := len(er.R) - keep
	er.R = slices.Clone(er.R[cut:])
	for k, v := range er.RV {
		er.RV[k] = slices.Clone(v[cut:])
	}
}

// number reads a JSON number, or a numeric string such as "12.50".
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

// setTrait records a value; the newest time wins whatever the arrival
// order, and displaced values go to the history.
func (p *profileRec) setTrait(name string, v traitVal, historyCap int) {
	if p.Traits == nil {
		p.Traits = make(map[string]*traitRec, 8)
	}
	cur := p.Traits[name]
	if cur == nil {
		p.Traits[name] = &traitRec{traitVal: v}
		return
	}
	if v.T >= cur.T {
		if sameValue(v.V, cur.V) && v.S == cur.S {
			return // unchanged: keep the provenance of when it was first set
		}
		cur.H = append([]traitVal{cur.traitVal}, cur.H...)
		cur.traitVal = v
	} else {
		// An older value arriving late: it belongs in the history.
		i := 0
		for i < len(cur.H) && cur.H[i].T > v.T {
			i++
		}
		if i < len(cur.H) && cur.H[i].T == v.T && sameValue(cur.H[i].V, v.V) {
			return
		}
		cur.H = slices.Insert(cur.H, i, v)
	}
	if historyCap > 0 && len(cur.H) > historyCap {
		cur.H = cur.H[:historyCap]
	}
}

func sameValue(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ab) == string(bb)
}

// absorb merges other into p: identities, traits (newest wins, the rest to
// history), event aggregates and times. p keeps its id.
func (p *profileRec) absorb(o *profileRec, cfg *ProfileConfig) {
	p.Merged = append(p.Merged, o.PID)
	p.Merged = append(p.Merged, o.Merged...)
	for _, id := range o.IDs {
		found := false
		for i := range p.IDs {
			if p.IDs[i].T == id.T && p.IDs[i].V == id.V {
				p.IDs[i].F = min(p.IDs[i].F, id.F)
				p.IDs[i].L = max(p.IDs[i].L, id.L)
				found = true
				break
			}
		}
		if !found {
			p.IDs = append(p.IDs, id)
		}
	}
	for _, b := range o.Blocked {
		for i := int64(0); i < b.N; i++ {
			p.touchBlocked(identity.ID{Type: b.T, Value: b.V})
		}
	}
	for name, tr := range o.Traits {
		for i := len(tr.H) - 1; i >= 0; i-- {
			p.setTrait(name, tr.H[i], cfg.TraitHistory)
		}
		p.setTrait(name, tr.traitVal, cfg.TraitHistory)
	}
	for name, oe := range o.Events {
		if p.Events == nil {
			p.Events = make(map[string]*eventRec, len(o.Events))
		}
		pe := p.Events[name]
		if pe == nil {
			p.Events[name] = oe
			continue
		}
		pe.merge(oe, cfg.RecentPerEvent)
	}
	if o.Count > 0 {
		if p.Count == 0 || o.First < p.First {
			p.First = o.First
		}
		if p.Count == 0 || o.Last > p.Last {
			p.Last = o.Last
		}
	}
	p.Count += o.Count
}

func (er *eventRec) merge(o *eventRec, recentCap int) {
	er.N += o.N
	er.F = min(er.F, o.F)
	er.L = max(er.L, o.L)
	for k, v := range o.S {
		if er.S == nil {
			er.S = make(map[string]float64, len(o.S))
		}
		er.S[k] += v
	}
	// Merge the two sorted occurrence lists with their values.
	props := map[string]bool{}
	for k := range er.RV {
		props[k] = true
	}
	for k := range o.RV {
		props[k] = true
	}
	r := make([]int64, 0, len(er.R)+len(o.R))
	rv := make(map[string][]float64, len(props))
	val := func(m map[string][]float64, k string, i int) float64 {
		if v, ok := m[k]; ok {
			return v[i]
		}
		return 0
	}
	i, j := 0, 0
	for i < len(er.R) || j < len(o.R) {
		fromA := j >= len(o.R) || (i < len(er.R) && er.R[i] <= o.R[j])
		if fromA {
			r = append(r, er.R[i])
			for k := range props {
				rv[k] = append(rv[k], val(er.RV, k, i))
			}
			i++
		} else {
			r = append(r, o.R[j])
			for k := range props {
				rv[k] = append(rv[k], val(o.RV, k, j))
			}
			j++
		}
	}
	er.R = r
	if len(props) > 0 {
		er.RV = rv
	}
	er.trim(recentCap)
}

// export converts the record to the API type.
func (p *profileRec) export() *Profile {
	out := &Profile{
		ID:         pidString(p.PID),
		MergedIDs:  make([]string, 0, len(p.Merged)),
		Identities: make([]Identity, 0, len(p.IDs)),
		Blocked:    make([]BlockedIdentifier, 0, len(p.Blocked)),
		Traits:     make(map[string]Trait, len(p.Traits)),
		Events:     make(map[string]EventStats, len(p.Events)),
		EventCount: p.Count,
		FirstSeen:  unixTime(p.First),
		LastSeen:   unixTime(p.Last),
	}
	for _, m := range p.Merged {
		out.MergedIDs = append(out.MergedIDs, pidString(m))
	}
	for _, id := range p.IDs {
		out.Identities = append(out.Identities, Identity{Type: id.T, Value: id.V, FirstSeen: unixTime(id.F), LastSeen: unixTime(id.L)})
	}
	for _, b := range p.Blocked {
		out.Blocked = append(out.Blocked, BlockedIdentifier{Type: b.T, Value: b.V, Count: b.N})
	}
	for name, tr := range p.Traits {
		t := Trait{TraitValue: tr.traitVal.export(), History: make([]TraitValue, 0, len(tr.H))}
		for _, h := range tr.H {
			t.History = append(t.History, h.export())
		}
		out.Traits[name] = t
	}
	for name, er := range p.Events {
		out.Events[name] = EventStats{Count: er.N, First: unixTime(er.F), Last: unixTime(er.L), Sums: er.S}
	}
	return out
}

func (v traitVal) export() TraitValue {
	src := v.S
	if src == "" {
		src = "event"
	}
	return TraitValue{Value: v.V, Time: unixTime(v.T), MessageID: v.M, Source: src, Reason: v.R}
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
