package consent

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Records are stored in a binary form since schema 7; earlier ones as the
// JSON of Record, which Decode still reads (a JSON record starts with
// '{'). The binary form is a little under half the size (the 1M demo's
// 3.55M records were 1.27 GB of JSON, a quarter of all the bytes its
// ingest wrote) and several times faster to write and read:
//
//	recordCodecVersion
//	uvarint seq  uvarint pid
//	purpose status legal_basis jurisdiction source policy_version
//	  evidence ip_hash message_id          each uvarint length + bytes
//	varint decided_at  varint recorded_at
//	prev: 0 (none) | 1 + 32 bytes (the hash, when Prev is its lower-case
//	  hex, as the engine always writes it) | 2 + uvarint length + bytes
//
// The hash of a record is still the SHA-256 of its stored bytes, in either
// form. Encoding is deterministic: a record encodes to the same bytes every
// time, so its hash can be computed again from the Record.
const recordCodecVersion = 2

// Prev forms in the binary record.
const (
	prevNone = iota
	prevHash
	prevText
)

// encodeRecord appends the binary form of r to b.
func encodeRecord(b []byte, r *Record) []byte {
	b = append(b, recordCodecVersion)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendUvarint(b, r.PID)
	for _, s := range [...]string{r.Purpose, r.Status, r.LegalBasis, r.Jurisdiction, r.Source, r.Policy, r.Evidence, r.IPHash, r.MessageID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, r.DecidedAt)
	b = binary.AppendVarint(b, r.RecordedAt)
	switch h, ok := lowerHexHash(r.Prev); {
	case r.Prev == "":
		b = append(b, prevNone)
	case ok:
		b = append(b, prevHash)
		b = append(b, h[:]...)
	default:
		b = append(b, prevText)
		b = binary.AppendUvarint(b, uint64(len(r.Prev)))
		b = append(b, r.Prev...)
	}
	return b
}

// lowerHexHash reads s as Hash.String writes a hash: 64 lower-case hex
// digits, without allocating.
func lowerHexHash(s string) (h Hash, ok bool) {
	if len(s) != 2*len(h) {
		return h, false
	}
	for i := range h {
		hi, ok1 := lowerHexDigit(s[2*i])
		lo, ok2 := lowerHexDigit(s[2*i+1])
		if !ok1 || !ok2 {
			return h, false
		}
		h[i] = hi<<4 | lo
	}
	return h, true
}

func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// recordReader reads the fields of a binary record, remembering the first
// failure. Its strings share one copy of the record's bytes: one
// allocation a record instead of one a field.
type recordReader struct {
	b   []byte // what is left to read
	all string // the whole record, as b was at the start
	err error
}

func (rr *recordReader) fail(what string) {
	if rr.err == nil {
		rr.err = fmt.Errorf("%w: binary record: bad %s", ErrCorrupt, what)
	}
	rr.b = nil
}

func (rr *recordReader) uvarint(what string) uint64 { return readVarint(rr, what, binary.Uvarint) }
func (rr *recordReader) varint(what string) int64   { return readVarint(rr, what, binary.Varint) }

// readVarint reads one number with decode (binary.Uvarint or Varint).
func readVarint[T uint64 | int64](rr *recordReader, what string, decode func([]byte) (T, int)) T {
	v, n := decode(rr.b)
	if n <= 0 {
		rr.fail(what)
		return 0
	}
	rr.b = rr.b[n:]
	return v
}

func (rr *recordReader) bytes(n uint64, what string) []byte {
	if n > uint64(len(rr.b)) {
		rr.fail(what)
		return nil
	}
	v := rr.b[:n]
	rr.b = rr.b[n:]
	return v
}

func (rr *recordReader) string(what string) string {
	n := rr.uvarint(what)
	start := len(rr.all) - len(rr.b)
	if rr.bytes(n, what) == nil {
		return ""
	}
	return rr.all[start : start+int(n)]
}

// decodeRecord reads the binary form: all of b, or an ErrCorrupt error.
func decodeRecord(b []byte) (*Record, error) {
	if len(b) == 0 || b[0] != recordCodecVersion {
		return nil, fmt.Errorf("%w: not a binary record", ErrCorrupt)
	}
	rr := &recordReader{b: b[1:], all: string(b[1:])}
	r := &Record{Seq: rr.uvarint("seq"), PID: rr.uvarint("pid")}
	for _, f := range [...]struct {
		s    *string
		name string
	}{
		{&r.Purpose, "purpose"}, {&r.Status, "status"}, {&r.LegalBasis, "legal_basis"},
		{&r.Jurisdiction, "jurisdiction"}, {&r.Source, "source"}, {&r.Policy, "policy_version"},
		{&r.Evidence, "evidence"}, {&r.IPHash, "ip_hash"}, {&r.MessageID, "message_id"},
	} {
		*f.s = rr.string(f.name)
	}
	r.DecidedAt = rr.varint("decided_at")
	r.RecordedAt = rr.varint("recorded_at")
	switch form := rr.bytes(1, "prev"); {
	case rr.err != nil:
	case form[0] == prevNone:
	case form[0] == prevHash:
		r.Prev = hex.EncodeToString(rr.bytes(32, "prev"))
	case form[0] == prevText:
		r.Prev = rr.string("prev")
	default:
		rr.fail("prev")
	}
	if rr.err == nil && len(rr.b) > 0 {
		rr.fail("length: bytes after the record")
	}
	if rr.err != nil {
		return nil, rr.err
	}
	return r, nil
}
