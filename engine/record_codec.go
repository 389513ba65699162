package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	json "github.com/goccy/go-json"
)

// Stored profile layout (value of a 'p' key), version 3. All integers are
// varints (times zig-zag, Unix nanoseconds; counts unsigned); strings and
// byte runs are a uvarint length then the bytes.
//
//	0x03
//	count  first  last
//	nMerged  pid...
//	nIDs     (type value first last)...
//	nBlocked (type value n)...
//	nProv    (time msgId source reason)...
//	nTraits  (name value prov  nHist (value prov)...)...
//	nEvents  (name n first last  nSums (prop float64)...  nRecent delta-seconds...
//	          nRV (prop float64 x nRecent)...)...
//
// A trait value is a tag byte: 0 null, 1 false, 2 true, 3 float64 (8 bytes),
// 4 string, 5 JSON (arrays, objects). Its provenance (when it was set, by
// which message, from which source, why) is an index into the record's
// provenance table: an identify sets a dozen traits at once, and writing
// its messageId and time once per record rather than once per trait made
// the 1M demo's records a third smaller, 938 to 623 bytes on average
// (BENCHMARKS.md). Version 2 records wrote
// the provenance inline after each value, version 1 records were JSON
// objects (they start with '{'); both are still read.
const profileCodecVersion = 3

// profileCodecV2 is the version that wrote provenance inline.
const profileCodecV2 = 2

var errBadProfile = errors.New("malformed profile record")

func encodeProfile(p *profileRec) ([]byte, error) {
	b := make([]byte, 0, 256+64*len(p.IDs)+48*len(p.Traits)+64*len(p.Events))
	b = append(b, profileCodecVersion)
	b = binary.AppendUvarint(b, uint64(p.Count))
	b = binary.AppendVarint(b, p.First)
	b = binary.AppendVarint(b, p.Last)
	b = binary.AppendUvarint(b, uint64(len(p.Merged)))
	for _, m := range p.Merged {
		b = binary.AppendUvarint(b, m)
	}
	b = binary.AppendUvarint(b, uint64(len(p.IDs)))
	for _, id := range p.IDs {
		b = appendString(b, id.T)
		b = appendString(b, id.V)
		b = binary.AppendVarint(b, id.F)
		b = binary.AppendVarint(b, id.L)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Blocked)))
	for _, bl := range p.Blocked {
		b = appendString(b, bl.T)
		b = appendString(b, bl.V)
		b = binary.AppendUvarint(b, uint64(bl.N))
	}
	provs := provTables.Get().(*provTable)
	defer provs.release()
	for _, tr := range p.Traits {
		provs.add(tr.prov())
		for _, h := range tr.H {
			provs.add(h.prov())
		}
	}
	b = binary.AppendUvarint(b, uint64(len(provs.list)))
	for _, pv := range provs.list {
		b = binary.AppendVarint(b, pv.T)
		b = appendString(b, pv.M)
		b = appendString(b, pv.S)
		b = appendString(b, pv.R)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Traits)))
	var err error
	for name, tr := range p.Traits {
		b = appendString(b, name)
		if b, err = appendTraitVal(b, tr.traitVal, provs); err != nil {
			return nil, fmt.Errorf("trait %s: %w", name, err)
		}
		b = binary.AppendUvarint(b, uint64(len(tr.H)))
		for _, h := range tr.H {
			if b, err = appendTraitVal(b, h, provs); err != nil {
				return nil, fmt.Errorf("trait %s: %w", name, err)
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(len(p.Events)))
	for name, er := range p.Events {
		b = appendString(b, name)
		b = binary.AppendUvarint(b, uint64(er.N))
		b = binary.AppendVarint(b, er.F)
		b = binary.AppendVarint(b, er.L)
		b = binary.AppendUvarint(b, uint64(len(er.S)))
		for prop, v := range er.S {
			b = appendString(b, prop)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		b = binary.AppendUvarint(b, uint64(len(er.R)))
		prev := int64(0)
		for _, sec := range er.R {
			b = binary.AppendVarint(b, sec-prev)
			prev = sec
		}
		b = binary.AppendUvarint(b, uint64(len(er.RV)))
		for prop, vals := range er.RV {
			b = appendString(b, prop)
			for i := range er.R {
				v := 0.0
				if i < len(vals) {
					v = vals[i]
				}
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
			}
		}
	}
	return b, nil
}

// provenance is where a trait value came from: the fields of traitVal
// other than the value.
type provenance struct {
	T       int64
	M, S, R string
}

func (v traitVal) prov() provenance { return provenance{T: v.T, M: v.M, S: v.S, R: v.R} }

// provTable numbers the distinct provenances of a record's trait values.
// Most records have one or two, so they are found by a scan; a record
// with a long trait history gets a map.
type provTable struct {
	list  []provenance
	index map[provenance]int
}

// provScanMax is how many entries provTable scans before it keeps a map.
const provScanMax = 16

// provTables keeps encodeProfile from allocating a table per record.
var provTables = sync.Pool{New: func() any { return new(provTable) }}

func (t *provTable) release() {
	clear(t.list) // drop the strings
	t.list, t.index = t.list[:0], nil
	provTables.Put(t)
}

func (t *provTable) add(pv provenance) {
	if t.find(pv) >= 0 {
		return
	}
	t.list = append(t.list, pv)
	if t.index != nil {
		t.index[pv] = len(t.list) - 1
	} else if len(t.list) > provScanMax {
		t.index = make(map[provenance]int, 2*len(t.list))
		for i, x := range t.list {
			t.index[x] = i
		}
	}
}

// find returns pv's number, or -1.
func (t *provTable) find(pv provenance) int {
	if t.index != nil {
		if i, ok := t.index[pv]; ok {
			return i
		}
		return -1
	}
	for i := range t.list {
		if t.list[i] == pv {
			return i
		}
	}
	return -1
}

func appendTraitVal(b []byte, v traitVal, provs *provTable) ([]byte, error) {
	switch x := v.V.(type) {
	case nil:
		b = append(b, 0)
	case bool:
		if x {
			b = append(b, 2)
		} else {
			b = append(b, 1)
		}
	case float64:
		b = append(b, 3)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	case string:
		b = append(b, 4)
		b = appendString(b, x)
	default:
		j, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		b = append(b, 5)
		b = appendString(b, string(j))
	}
	i := provs.find(v.prov())
	if i < 0 {
		return nil, errors.New("provenance missing from the table") // encodeProfile adds every one first
	}
	return binary.AppendUvarint(b, uint64(i)), nil
}

// profileReader reads the varint layout, remembering the first error.
type profileReader struct {
	b   []byte
	err error
	// provs is the record's provenance table; nil for version 2, which
	// wrote provenance inline.
	provs []provenance
}

func (r *profileReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadProfile
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length that must fit in what is left of the record, so a
// corrupt length cannot ask for a huge allocation.
func (r *profileReader) count() int {
	v := r.uvarint()
	if v > uint64(len(r.b)) {
		r.err = errBadProfile
		return 0
	}
	return int(v)
}

func (r *profileReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errBadProfile
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *profileReader) str() string {
	n := r.count()
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *profileReader) float() float64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errBadProfile
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *profileReader) byte1() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errBadProfile
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *profileReader) traitVal() traitVal {
	var v traitVal
	switch r.byte1() {
	case 0:
	case 1:
		v.V = false
	case 2:
		v.V = true
	case 3:
		v.V = r.float()
	case 4:
		v.V = r.str()
	case 5:
		var x any
		if err := json.Unmarshal([]byte(r.str()), &x); err != nil && r.err == nil {
			r.err = errBadProfile
		}
		v.V = x
	default:
		r.err = errBadProfile
	}
	if r.provs == nil {
		v.T, v.M, v.S, v.R = r.varint(), r.str(), r.str(), r.str()
		return v
	}
	if i := r.uvarint(); i < uint64(len(r.provs)) {
		pv := r.provs[i]
		v.T, v.M, v.S, v.R = pv.T, pv.M, pv.S, pv.R
	} else if r.err == nil {
		r.err = errBadProfile
	}
	return v
}

func decodeProfile(pid uint64, b []byte) (*profileRec, error) {
	p := &profileRec{PID: pid}
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, p); err != nil {
			return nil, fmt.Errorf("decode profile %s: %w", pidString(pid), err)
		}
		return p, nil
	}
	if len(b) == 0 || (b[0] != profileCodecVersion && b[0] != profileCodecV2) {
		return nil, fmt.Errorf("decode profile %s: %w", pidString(pid), errBadProfile)
	}
	r := &profileReader{b: b[1:]}
	p.Count = int64(r.uvarint())
	p.First = r.varint()
	p.Last = r.varint()
	if n := r.count(); n > 0 {
		p.Merged = make([]uint64, n)
		for i := range p.Merged {
			p.Merged[i] = r.uvarint()
		}
	}
	if n := r.count(); n > 0 {
		p.IDs = make([]identRec, n)
		for i := range p.IDs {
			p.IDs[i] = identRec{T: r.str(), V: r.str(), F: r.varint(), L: r.varint()}
		}
	}
	if n := r.count(); n > 0 {
		p.Blocked = make([]blockedRec, n)
		for i := range p.Blocked {
			p.Blocked[i] = blockedRec{T: r.str(), V: r.str(), N: int64(r.uvarint())}
		}
	}
	if b[0] == profileCodecVersion {
		// Every entry takes at least four bytes, so a corrupt count
		// cannot ask for more than the record holds.
		n := r.count()
		if n > len(r.b)/4 {
			r.err, n = errBadProfile, 0
		}
		r.provs = make([]provenance, 0, n) // not nil: the version 3 form
		for len(r.provs) < n && r.err == nil {
			r.provs = append(r.provs, provenance{T: r.varint(), M: r.str(), S: r.str(), R: r.str()})
		}
	}
	if n := r.count(); n > 0 {
		p.Traits = make(map[string]*traitRec, n)
		for range n {
			name := r.str()
			tr := &traitRec{traitVal: r.traitVal()}
			if h := r.count(); h > 0 {
				tr.H = make([]traitVal, h)
				for i := range tr.H {
					tr.H[i] = r.traitVal()
				}
			}
			if r.err != nil {
				break
			}
			p.Traits[name] = tr
		}
	}
	if n := r.count(); n > 0 {
		p.Events = make(map[string]*eventRec, n)
		for range n {
			name := r.str()
			er := &eventRec{N: int64(r.uvarint()), F: r.varint(), L: r.varint()}
			if s := r.count(); s > 0 {
				er.S = make(map[string]float64, s)
				for range s {
					prop := r.str()
					er.S[prop] = r.float()
				}
			}
			if k := r.count(); k > 0 {
				er.R = make([]int64, k)
				prev := int64(0)
				for i := range er.R {
					prev += r.varint()
					er.R[i] = prev
				}
			}
			if rv := r.count(); rv > 0 {
				er.RV = make(map[string][]float64, rv)
				for range rv {
					prop := r.str()
					if len(r.b) < 8*len(er.R) {
						r.err = errBadProfile
						break
					}
					vals := make([]float64, len(er.R))
					for i := range vals {
						vals[i] = r.float()
					}
					er.RV[prop] = vals
				}
			}
			if r.err != nil {
				break
			}
			p.Events[name] = er
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errBadProfile
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode profile %s: %w", pidString(pid), r.err)
	}
	return p, nil
}
