package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/rules"
	"github.com/loupe-cdp/loupe/store"
)

// Segments are named, versioned rules. Every save writes a new version
// under 'g' name 0x00 version(4); nothing is overwritten, so the history
// (who changed the rule, when, to what) is kept. Deleting a segment writes
// a version marked deleted; saving the name again continues the numbering.

// Segment is one version of a saved segment.
type Segment struct {
	Name        string    `json:"name"`
	Version     int       `json:"version"`
	Rule        string    `json:"rule"`
	Description string    `json:"description"`
	Purpose     string    `json:"purpose"`
	Author      string    `json:"author"`
	Time        time.Time `json:"time"`
	Deleted     bool      `json:"deleted,omitempty"`
}

// SegmentOptions are the optional parts of a saved segment.
type SegmentOptions struct {
	Description string
	// Purpose is what the segment is for (a consent purpose such as
	// "email_marketing"); exports keep only profiles whose consent allows it.
	Purpose string
}

// ErrSegmentName: a segment name that cannot be stored.
var ErrSegmentName = errors.New("bad segment name")

// segRec is the stored form of a segment version.
type segRec struct {
	R string `json:"r"`
	D string `json:"d,omitempty"`
	P string `json:"p,omitempty"`
	A string `json:"a"`
	T int64  `json:"t"`
	X bool   `json:"x,omitempty"` // deleted
}

func segmentKey(name string, version int) []byte {
	k := make([]byte, 0, len(name)+6)
	k = append(k, store.PrefixSegment)
	k = append(k, name...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(version))
}

func segmentPrefix(name string) []byte {
	return append(append([]byte{store.PrefixSegment}, name...), 0)
}

func checkSegmentName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrSegmentName)
	case len(name) > 200:
		return fmt.Errorf("%w: longer than 200 bytes", ErrSegmentName)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w %q: control characters or invalid UTF-8", ErrSegmentName, name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w %q: leading or trailing space", ErrSegmentName, name)
	}
	return nil
}

func parseSegment(k, v []byte) (Segment, error) {
	// k = 'g' name 0x00 version(4)
	if len(k) < 6 || k[len(k)-5] != 0 {
		return Segment{}, fmt.Errorf("bad segment key %q", k)
	}
	var r segRec
	if err := json.Unmarshal(v, &r); err != nil {
		return Segment{}, fmt.Errorf("segment %q: %w", k[1:len(k)-5], err)
	}
	return Segment{
		Name: string(k[1 : len(k)-5]), Version: int(binary.BigEndian.Uint32(k[len(k)-4:])),
		Rule: r.R, Description: r.D, Purpose: r.P, Author: r.A, Time: unixTime(r.T), Deleted: r.X,
	}, nil
}

// segmentVersions reads every version of every segment (name == "") or of
// one, oldest first.
func segmentVersions(t *store.Txn, name string) ([]Segment, error) {
	prefix := []byte{store.PrefixSegment}
	if name != "" {
		prefix = segmentPrefix(name)
	}
	var out []Segment
	err := t.Iterate(prefix, store.IterOptions{}, func(k, v []byte) error {
		s, err := parseSegment(k, v)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// latestSegments is the newest version of each segment that is not
// deleted, by name.
func latestSegments(t *store.Txn) (map[string]Segment, error) {
	all, err := segmentVersions(t, "")
	if err != nil {
		return nil, err
	}
	m := map[string]Segment{}
	for _, s := range all {
		m[s.Name] = s // versions ascend within a name
	}
	for n, s := range m {
		if s.Deleted {
			delete(m, n)
		}
	}
	return m, nil
}

// ErrSegmentPurpose: a segment's purpose is not one of the configured
// consent purposes.
var ErrSegmentPurpose = errors.New("bad segment purpose")

// SaveSegment validates rule and stores it as the next version of name.
// A rule that does not compile is returned as *rules.Error; in_segment
// must name saved segments and must not come back to name.
func (e *Engine) SaveSegment(ctx context.Context, name, rule string, opts SegmentOptions) (Segment, error) {
	if err := checkSegmentName(name); err != nil {
		return Segment{}, err
	}
	r, err := rules.Compile(rule, rules.CompileOptions{Name: name})
	if err != nil {
		return Segment{}, err
	}
	if p := opts.Purpose; p != "" && !slices.Contains(e.cfg.Consent.Purposes, p) {
		return Segment{}, fmt.Errorf("%w: unknown purpose %q (purposes: %s)", ErrSegmentPurpose, p, strings.Join(e.cfg.Consent.Purposes, ", "))
	}
	var saved Segment
	err = e.db.Update(func(t *store.Txn) error {
		latest, err := latestSegments(t)
		if err != nil {
			return err
		}
		if err := checkSegmentRefs(name, r, latest); err != nil {
			return err
		}
		versions, err := segmentVersions(t, name)
		if err != nil {
			return err
		}
		saved = Segment{
			Name: name, Version: 1, Rule: rule, Description: opts.Description, Purpose: opts.Purpose,
			Author: e.actor, Time: e.now().UTC(),
		}
		if n := len(versions); n > 0 {
			saved.Version = versions[n-1].Version + 1
		}
		b, err := json.Marshal(segRec{R: rule, D: opts.Description, P: opts.Purpose, A: e.actor, T: saved.Time.UnixNano()})
		if err != nil {
			return err
		}
		return t.Set(segmentKey(name, saved.Version), b)
	})
	if err != nil {
		return Segment{}, fmt.Errorf("save segment %q: %w", name, err)
	}
	return saved, nil
}

// checkSegmentRefs refuses in_segment references to unknown segments and
// cycles through name.
func checkSegmentRefs(name string, r *rules.Rule, latest map[string]Segment) error {
	var walk func(refs []string, path []string) error
	walk = func(refs []string, path []string) error {
		for _, ref := range refs {
			if ref == name {
				return fmt.Errorf("in_segment cycle: %s", strings.Join(append(path, ref), " -> "))
			}
			s, ok := latest[ref]
			if !ok {
				return fmt.Errorf("in_segment(%q): no such segment: %w", ref, ErrNotFound)
			}
			if len(path) > 32 {
				return fmt.Errorf("in_segment nesting deeper than 32 at %q", ref)
			}
			sub, err := rules.Compile(s.Rule, rules.CompileOptions{Name: ref})
			if err != nil {
				continue // a stored rule that no longer compiles fails at evaluation
			}
			if err := walk(sub.Segments(), append(path, ref)); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(r.Segments(), []string{name})
}

// Segments lists the saved segments (latest versions), by name.
func (e *Engine) Segments(ctx context.Context) ([]Segment, error) {
	var out []Segment
	err := e.db.View(func(t *store.Txn) error {
		m, err := latestSegments(t)
		for _, s := range m {
			out = append(out, s)
		}
		return err
	})
	slices.SortFunc(out, func(a, b Segment) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// Segment returns the latest version of a saved segment.
func (e *Engine) Segment(ctx context.Context, name string) (Segment, error) {
	var out Segment
	err := e.db.View(func(t *store.Txn) error {
		vs, err := segmentVersions(t, name)
		if err != nil {
			return err
		}
		if len(vs) == 0 || vs[len(vs)-1].Deleted {
			return fmt.Errorf("segment %q: %w", name, ErrNotFound)
		}
		out = vs[len(vs)-1]
		return nil
	})
	return out, err
}

// SegmentHistory returns every version of a segment, oldest first,
// deletions included.
func (e *Engine) SegmentHistory(ctx context.Context, name string) ([]Segment, error) {
	var out []Segment
	err := e.db.View(func(t *store.Txn) error {
		var err error
		out, err = segmentVersions(t, name)
		if err == nil && len(out) == 0 {
			err = fmt.Errorf("segment %q: %w", name, ErrNotFound)
		}
		return err
	})
	return out, err
}

// DeleteSegment marks a segment deleted (its history stays). A segment
// other segments use with in_segment cannot be deleted.
func (e *Engine) DeleteSegment(ctx context.Context, name string) (Segment, error) {
	var del Segment
	err := e.db.Update(func(t *store.Txn) error {
		latest, err := latestSegments(t)
		if err != nil {
			return err
		}
		cur, ok := latest[name]
		if !ok {
			return fmt.Errorf("segment %q: %w", name, ErrNotFound)
		}
		var users []string
		for n, s := range latest {
			if r, err := rules.Compile(s.Rule, rules.CompileOptions{Name: n}); err == nil && slices.Contains(r.Segments(), name) {
				users = append(users, n)
			}
		}
		if len(users) > 0 {
			slices.Sort(users)
			return fmt.Errorf("segment %q is used by %s (in_segment)", name, strings.Join(users, ", "))
		}
		del = cur
		del.Version, del.Deleted, del.Author, del.Time = cur.Version+1, true, e.actor, e.now().UTC()
		b, err := json.Marshal(segRec{R: cur.Rule, D: cur.Description, P: cur.Purpose, A: e.actor, T: del.Time.UnixNano(), X: true})
		if err != nil {
			return err
		}
		return t.Set(segmentKey(name, del.Version), b)
	})
	if err != nil {
		return Segment{}, fmt.Errorf("delete segment: %w", err)
	}
	return del, nil
}

// segmentResolver resolves in_segment names to saved segments, reading
// the store once on first use.
func (e *Engine) segmentResolver(ctx context.Context) func(string) (*rules.Rule, bool) {
	var latest map[string]Segment
	return func(name string) (*rules.Rule, bool) {
		if latest == nil {
			latest = map[string]Segment{}
			if err := e.db.View(func(t *store.Txn) error {
				var err error
				latest, err = latestSegments(t)
				return err
			}); err != nil {
				e.log.Warn("read segments", "err", err)
			}
		}
		s, ok := latest[name]
		if !ok {
			return nil, false
		}
		r, err := rules.Compile(s.Rule, rules.CompileOptions{Name: name})
		if err != nil {
			return nil, false
		}
		return r, true
	}
}

// SegmentMembers is a segment's current membership.
type SegmentMembers struct {
	Segment Segment
	Count   int
	Total   int
	Members []ProfileSummary // the first Limit members, by profile id
	Errors  []RuleRowError
}

// SegmentMembers evaluates a saved segment and returns its count and the
// first limit members (all when limit < 0).
func (e *Engine) SegmentMembers(ctx context.Context, name string, limit int) (SegmentMembers, error) {
	seg, err := e.Segment(ctx, name)
	if err != nil {
		return SegmentMembers{}, err
	}
	r, err := rules.Compile(seg.Rule, rules.CompileOptions{Name: name})
	if err != nil {
		return SegmentMembers{}, fmt.Errorf("segment %q: stored rule: %w", name, err)
	}
	out := SegmentMembers{Segment: seg, Members: []ProfileSummary{}}
	err = e.withSnapshot(ctx, func(s *snapState) error {
		res, err := e.evalSnap(ctx, s, r, "", 0, nil)
		if err != nil {
			return err
		}
		out.Count, out.Total = res.Count, res.Total
		for _, re := range res.Errors {
			out.Errors = append(out.Errors, RuleRowError{ProfileID: re.ProfileID, Message: re.Err.Error()})
		}
		rows := s.byPID(res.Matches)
		if limit >= 0 && len(rows) > limit {
			rows = rows[:limit]
		}
		for _, row := range rows {
			out.Members = append(out.Members, e.summaryAt(s, row))
		}
		return nil
	})
	return out, err
}

// byPID returns the rows in profile-id order (caller holds s.mu).
func (s *snapState) byPID(matches []uint32) []int {
	rows := make([]int, len(matches))
	for i, m := range matches {
		rows[i] = int(m)
	}
	slices.SortFunc(rows, func(a, b int) int {
		if s.rowPID[a] < s.rowPID[b] {
			return -1
		}
		if s.rowPID[a] > s.rowPID[b] {
			return 1
		}
		return 0
	})
	return rows
}

// Overlap is how two segments intersect.
type Overlap struct {
	A     string `json:"a"`
	B     string `json:"b"`
	Both  int    `json:"both"`   // |A∩B|
	OnlyA int    `json:"only_a"` // |A−B|
	OnlyB int    `json:"only_b"` // |B−A|
	Total int    `json:"total"`
}

// SegmentOverlap evaluates two saved segments over the same snapshot.
func (e *Engine) SegmentOverlap(ctx context.Context, a, b string) (Overlap, error) {
	var rs [2]*rules.Rule
	for i, name := range []string{a, b} {
		seg, err := e.Segment(ctx, name)
		if err != nil {
			return Overlap{}, err
		}
		if rs[i], err = rules.Compile(seg.Rule, rules.CompileOptions{Name: name}); err != nil {
			return Overlap{}, fmt.Errorf("segment %q: stored rule: %w", name, err)
		}
	}
	out := Overlap{A: a, B: b}
	err := e.withSnapshot(ctx, func(s *snapState) error {
		ra, err := e.evalSnap(ctx, s, rs[0], "", 0, nil)
		if err != nil {
			return err
		}
		rb, err := e.evalSnap(ctx, s, rs[1], "", 0, nil)
		if err != nil {
			return err
		}
		out.Total = ra.Total
		ma, mb := ra.Matches, rb.Matches // ascending row indexes
		i, j := 0, 0
		for i < len(ma) && j < len(mb) {
			switch {
			case ma[i] == mb[j]:
				out.Both++
				i++
				j++
			case ma[i] < mb[j]:
				out.OnlyA++
				i++
			default:
				out.OnlyB++
				j++
			}
		}
		out.OnlyA += len(ma) - i
		out.OnlyB += len(mb) - j
		return nil
	})
	return out, err
}

// profileSegments lists the saved segments profile pid is in now, for
// data-subject exports and erasure dry runs. Each segment is evaluated over
// the snapshot once; a handful of segments costs a few tens of
// milliseconds at a million profiles.
func (e *Engine) profileSegments(ctx context.Context, pid string) ([]string, error) {
	segs, err := e.Segments(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	if len(segs) == 0 {
		return out, nil
	}
	err = e.withSnapshot(ctx, func(s *snapState) error {
		row, ok := s.table.Lookup(pid)
		if !ok {
			return nil
		}
		for _, seg := range segs {
			r, err := rules.Compile(seg.Rule, rules.CompileOptions{Name: seg.Name})
			if err != nil {
				return fmt.Errorf("segment %q: stored rule: %w", seg.Name, err)
			}
			res, err := e.evalSnap(ctx, s, r, "", 0, nil)
			if err != nil {
				return err
			}
			if _, found := slices.BinarySearch(res.Matches, uint32(row)); found {
				out = append(out, seg.Name)
			}
		}
		return nil
	})
	return out, err
}
