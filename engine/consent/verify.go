package consent

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
)

// Break is one place where a chain does not verify.
type Break struct {
	Chain   string `json:"chain"`   // "profile" or "global"
	Profile string `json:"profile"` // "p42", the profile chain
	Record  string `json:"record"`  // "c17", the record named
	What    string `json:"what"`
}

// Verifier recomputes both chains from the stored bytes. Feed it every
// stored record (in any order) and every global chain entry (in sequence
// order), then the heads, and call Finish.
type Verifier struct {
	recs    map[uint64]recInfo
	entries []entryInfo
	breaks  []Break
}

type recInfo struct {
	pid     uint64
	keyPID  uint64
	hash    Hash
	prev    string
	corrupt bool
	erased  bool
}

type entryInfo struct {
	seq uint64
	e   ChainEntry
	bad bool
}

// NewVerifier starts a verification.
func NewVerifier() *Verifier { return &Verifier{recs: map[uint64]recInfo{}} }

func pidText(pid uint64) string { return "p" + strconv.FormatUint(pid, 10) }

// AddRecord takes one stored record: the pid and seq of its key and its
// bytes.
func (v *Verifier) AddRecord(keyPID, keySeq uint64, b []byte) {
	s, err := Decode(b)
	if err != nil {
		v.breaks = append(v.breaks, Break{Chain: "profile", Profile: pidText(keyPID), Record: RecordID(keySeq), What: "stored bytes do not decode: " + err.Error()})
		v.recs[keySeq] = recInfo{pid: keyPID, keyPID: keyPID, hash: Sum(b), corrupt: true}
		return
	}
	if s.Seq() != keySeq {
		v.breaks = append(v.breaks, Break{Chain: "profile", Profile: pidText(s.PID()), Record: RecordID(keySeq), What: fmt.Sprintf("record says it is %s but is stored as %s", RecordID(s.Seq()), RecordID(keySeq))})
	}
	v.recs[keySeq] = recInfo{pid: s.PID(), keyPID: keyPID, hash: s.Hash, prev: s.Prev(), erased: s.Stub != nil}
}

// AddChainBlock takes the global chain block stored under seq first, in
// order of first.
func (v *Verifier) AddChainBlock(first uint64, b []byte) {
	if len(b) < 1+ChainEntrySize || b[0] != chainBlockVersion || (len(b)-1)%ChainEntrySize != 0 {
		v.breaks = append(v.breaks, Break{Chain: "global", Record: RecordID(first),
			What: fmt.Sprintf("%v: chain block is %d bytes, want version %d and 64 bytes per entry", ErrCorrupt, len(b), chainBlockVersion)})
		v.entries = append(v.entries, entryInfo{seq: first, bad: true})
		return
	}
	for i, off := uint64(0), 1; off < len(b); i, off = i+1, off+ChainEntrySize {
		v.addChainEntry(first+i, b[off:off+ChainEntrySize])
	}
}

// addChainEntry takes the global chain entry of seq.
func (v *Verifier) addChainEntry(seq uint64, b []byte) {
	e, err := ParseChainEntry(b)
	if err != nil {
		v.breaks = append(v.breaks, Break{Chain: "global", Record: RecordID(seq), What: err.Error()})
		v.entries = append(v.entries, entryInfo{seq: seq, bad: true})
		return
	}
	v.entries = append(v.entries, entryInfo{seq: seq, e: e})
}

// Records is the number of records seen.
func (v *Verifier) Records() int { return len(v.recs) }

// Finish checks both chains against the stored heads (the global head's
// bytes, nil when missing, and each profile chain's head, absent when
// missing) and returns every break found. Profile heads come parsed: the
// caller reads them from more than one place and reports those that do
// not parse.
func (v *Verifier) Finish(globalHead []byte, profileHeads map[uint64]Head) []Break {
	v.checkGlobal(globalHead)
	v.checkProfiles(profileHeads)
	return v.breaks
}

func (v *Verifier) name(seq uint64) string {
	if r, ok := v.recs[seq]; ok {
		return pidText(r.pid)
	}
	return ""
}

func (v *Verifier) checkGlobal(headBytes []byte) {
	var prev Hash
	var want uint64 = 1
	covered := make(map[uint64]bool, len(v.entries))
	for _, en := range v.entries {
		if en.seq != want {
			v.breaks = append(v.breaks, Break{Chain: "global", Profile: v.name(en.seq), Record: RecordID(en.seq),
				What: fmt.Sprintf("global chain entries jump from %s to %s: entries missing", RecordID(want-1), RecordID(en.seq))})
		}
		want = en.seq + 1
		covered[en.seq] = true
		if en.bad {
			prev = Hash{}
			continue
		}
		if got := NextGlobal(prev, en.e.Record); got != en.e.Chain {
			v.breaks = append(v.breaks, Break{Chain: "global", Profile: v.name(en.seq), Record: RecordID(en.seq),
				What: fmt.Sprintf("chain hash %s is not SHA-256(previous chain hash || record hash) = %s", short(en.e.Chain), short(got))})
		}
		prev = en.e.Chain
		r, ok := v.recs[en.seq]
		switch {
		case !ok:
			v.breaks = append(v.breaks, Break{Chain: "global", Record: RecordID(en.seq), What: "the record this entry covers is missing"})
		case r.hash != en.e.Record:
			v.breaks = append(v.breaks, Break{Chain: "global", Profile: pidText(r.pid), Record: RecordID(en.seq),
				What: fmt.Sprintf("stored record hashes to %s but the global chain recorded %s: the record was altered", short(r.hash), short(en.e.Record))})
		}
	}
	for seq, r := range v.recs {
		if !covered[seq] {
			v.breaks = append(v.breaks, Break{Chain: "global", Profile: pidText(r.pid), Record: RecordID(seq), What: "record has no global chain entry"})
		}
	}
	head, err := ParseHead(headBytes)
	switch {
	case err != nil:
		v.breaks = append(v.breaks, Break{Chain: "global", What: err.Error()})
	case len(v.entries) == 0 && head.Seq != 0:
		v.breaks = append(v.breaks, Break{Chain: "global", Record: RecordID(head.Seq), What: "the head names a record but the chain is empty"})
	case len(v.entries) > 0:
		last := v.entries[len(v.entries)-1]
		if head.Seq != last.seq || head.Hash != last.e.Chain {
			v.breaks = append(v.breaks, Break{Chain: "global", Profile: v.name(last.seq), Record: RecordID(last.seq),
				What: fmt.Sprintf("the chain ends at %s (%s) but its head says %s (%s): entries were removed or altered", RecordID(last.seq), short(last.e.Chain), RecordID(head.Seq), short(head.Hash))})
		}
	}
}

func (v *Verifier) checkProfiles(heads map[uint64]Head) {
	byPID := map[uint64][]uint64{}
	for seq, r := range v.recs {
		if r.corrupt {
			continue
		}
		byPID[r.pid] = append(byPID[r.pid], seq)
	}
	pids := make([]uint64, 0, len(byPID))
	for p := range byPID {
		pids = append(pids, p)
	}
	slices.Sort(pids)
	for _, pid := range pids {
		seqs := byPID[pid]
		slices.Sort(seqs)
		var prev Hash
		var prevSeq uint64
		for _, seq := range seqs {
			r := v.recs[seq]
			got, err := ParseHash(r.prev)
			if err != nil {
				v.breaks = append(v.breaks, Break{Chain: "profile", Profile: pidText(pid), Record: RecordID(seq), What: "prev field: " + err.Error()})
			} else if got != prev {
				b := Break{Chain: "profile", Profile: pidText(pid), Record: RecordID(seq),
					What: fmt.Sprintf("prev is %s but the profile chain has no record before it", short(got))}
				if prevSeq != 0 {
					b.Record = RecordID(prevSeq)
					b.What = fmt.Sprintf("%s hashes to %s but the next record of the profile, %s, recorded %s", RecordID(prevSeq), short(prev), RecordID(seq), short(got))
				}
				v.breaks = append(v.breaks, b)
			}
			prev, prevSeq = r.hash, seq
		}
		head := heads[pid]
		if head.Seq != prevSeq || head.Hash != prev {
			v.breaks = append(v.breaks, Break{Chain: "profile", Profile: pidText(pid), Record: RecordID(prevSeq),
				What: fmt.Sprintf("%s, the last record of the profile, hashes to %s but the profile's head says %s (%s)", RecordID(prevSeq), short(prev), RecordID(head.Seq), short(head.Hash))})
		}
	}
	for pid, h := range heads {
		if _, ok := byPID[pid]; ok {
			continue
		}
		if h.Seq != 0 {
			v.breaks = append(v.breaks, Break{Chain: "profile", Profile: pidText(pid), Record: RecordID(h.Seq), What: "the profile's head names a record but none of its records is stored"})
		}
	}
	slices.SortStableFunc(v.breaks, func(a, b Break) int { return cmp.Compare(a.Chain, b.Chain) })
}

func short(h Hash) string { return h.String()[:12] }
