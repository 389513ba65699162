// Package audit is the pure logic of Loupe's audit log: entries that say
// who did what to which profile, each holding the hash of the one before
// it, so that altering or removing an entry breaks the chain.
//
// An entry is stored as the JSON encoding of Entry; its hash is the
// SHA-256 of exactly those bytes, and the next entry's Prev is that hash
// in hex. The head (last sequence number and hash) is stored apart so that
// removing the newest entries is noticed too.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Actions the log records.
const (
	Export        = "export"
	Reveal        = "reveal"
	Rectification = "rectification"
	Erasure       = "erasure"
	Unmerge       = "unmerge"
	SegmentExport = "segment_export"
	ConsentSet    = "consent_set"
	DSROpen       = "dsr_open"
	DSRClose      = "dsr_close"
	Unsuppress    = "unsuppress"
	GC            = "gc"
)

// Actions lists the valid actions.
var Actions = []string{Export, Reveal, Rectification, Erasure, Unmerge, SegmentExport, ConsentSet, DSROpen, DSRClose, Unsuppress, GC}

// Entry is one audit log entry. Profile is a profile id, never personal
// data.
type Entry struct {
	Seq     uint64 `json:"seq"`
	Time    int64  `json:"time"` // Unix nanoseconds
	Actor   string `json:"actor"`
	Action  string `json:"action"`
	Profile string `json:"profile,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Prev    string `json:"prev,omitempty"`
}

// View is an entry as shown.
type View struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Profile string    `json:"profile"`
	Detail  string    `json:"detail"`
	Hash    string    `json:"hash"`
}

var profileID = regexp.MustCompile(`^p[0-9]+$`)

// Check validates an entry before it is written: a known action and a
// profile id (or none), so that no identifier lands in the log.
func Check(action, profile string) error {
	known := false
	for _, a := range Actions {
		known = known || a == action
	}
	if !known {
		return fmt.Errorf("unknown audit action %q", action)
	}
	if profile != "" && !profileID.MatchString(profile) {
		return fmt.Errorf("audit entry profile %q is not a profile id; the log never holds identifiers", profile)
	}
	return nil
}

// Encode returns the stored bytes of an entry and their hash.
func Encode(e *Entry) ([]byte, [32]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, [32]byte{}, err
	}
	return b, sha256.Sum256(b), nil
}

// Break is one place the audit chain does not verify.
type Break struct {
	Entry uint64 `json:"entry"`
	What  string `json:"what"`
}

// Verifier checks the chain entry by entry, in sequence order.
type Verifier struct {
	n      int
	want   uint64
	prev   [32]byte
	breaks []Break
}

// NewVerifier starts a verification.
func NewVerifier() *Verifier { return &Verifier{want: 1} }

func hexShort(h [32]byte) string { return hex.EncodeToString(h[:6]) }

// Add takes the entry stored under seq.
func (v *Verifier) Add(seq uint64, b []byte) (View, bool) {
	v.n++
	h := sha256.Sum256(b)
	defer func() { v.prev, v.want = h, seq+1 }()
	if seq != v.want {
		v.breaks = append(v.breaks, Break{Entry: seq, What: fmt.Sprintf("entries %d..%d are missing", v.want, seq-1)})
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		v.breaks = append(v.breaks, Break{Entry: seq, What: "stored bytes do not decode: " + err.Error()})
		return View{Seq: seq}, false
	}
	if e.Seq != seq {
		v.breaks = append(v.breaks, Break{Entry: seq, What: fmt.Sprintf("entry says it is %d", e.Seq)})
	}
	want := ""
	if seq > 1 || v.n > 1 {
		want = hex.EncodeToString(v.prev[:])
	}
	if e.Prev != want {
		if v.n > 1 {
			v.breaks = append(v.breaks, Break{Entry: seq - 1, What: fmt.Sprintf("entry %d hashes to %s but entry %d recorded %.12s: entry %d was altered", seq-1, hexShort(v.prev), seq, e.Prev, seq-1)})
		} else if seq == 1 {
			v.breaks = append(v.breaks, Break{Entry: seq, What: "the first entry names a previous one"})
		}
	}
	return View{Seq: e.Seq, Time: time.Unix(0, e.Time).UTC(), Actor: e.Actor, Action: e.Action, Profile: e.Profile, Detail: e.Detail, Hash: hex.EncodeToString(h[:])}, true
}

// Finish checks the stored head (seq(8) hash(32), or empty) and returns the
// breaks.
func (v *Verifier) Finish(head []byte) []Break {
	var hs uint64
	var hh [32]byte
	switch len(head) {
	case 0:
	case 40:
		for _, c := range head[:8] {
			hs = hs<<8 | uint64(c)
		}
		copy(hh[:], head[8:])
	default:
		v.breaks = append(v.breaks, Break{What: fmt.Sprintf("head is %d bytes, want 40", len(head))})
		return v.breaks
	}
	last := v.want - 1
	if v.n == 0 {
		last = 0
	}
	if hs != last || (v.n > 0 && hh != v.prev) {
		v.breaks = append(v.breaks, Break{Entry: last, What: fmt.Sprintf("the log ends at entry %d (%s) but its head says %d (%s): entries were removed or the last one altered", last, hexShort(v.prev), hs, hexShort(hh))})
	}
	return v.breaks
}

// Entries is the number of entries seen.
func (v *Verifier) Entries() int { return v.n }
