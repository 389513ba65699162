// Package consent is the pure logic of Loupe's consent ledger: the record
// kept for each decision, the two hash chains that make tampering evident,
// point-in-time evaluation with jurisdiction defaults, the mapping of
// Segment categoryPreferences to purposes, and Kantara-shaped receipts.
//
// Nothing here touches the store; the engine reads and writes the bytes.
//
// # Chains
//
// A record is stored in a binary form (codec.go; before schema 7 as the
// JSON encoding of Record), and its hash is the SHA-256 of exactly those
// stored bytes. Each record carries Prev, the hash
// of the previous record of the same profile chain (the profile the record
// was made for), so a profile's trail is a hash chain. Independently, the
// global chain has one entry per record in sequence order:
//
//	global[n] = SHA-256(global[n-1] || recordHash[n])    global[0] = 32 zero bytes
//
// An erased record is replaced by a Stub that keeps the record's hash and
// Prev but none of its content, so both chains still verify after an
// erasure.
package consent

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
)

// Statuses.
const (
	Granted   = "granted"
	Denied    = "denied"
	Withdrawn = "withdrawn"
)

// Statuses lists the valid statuses.
var Statuses = []string{Granted, Denied, Withdrawn}

// LegalBases lists the valid legal bases (GDPR art. 6(1)).
var LegalBases = []string{"consent", "contract", "legal_obligation", "vital_interest", "public_task", "legitimate_interest"}

// Sources a decision can come from. The list is open: any lower-case name
// is accepted; these are the ones Loupe itself writes or documents.
var Sources = []string{"banner", "form", "api", "import", "support", "email_footer", "gpc", "event"}

// Hash is a SHA-256 digest.
type Hash [32]byte

// String is the lower-case hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeros (no previous record).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash reads the hex form; "" is the zero hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if s == "" {
		return h, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("bad hash %q", s)
	}
	copy(h[:], b)
	return h, nil
}

// Sum hashes stored bytes.
func Sum(b []byte) Hash { return sha256.Sum256(b) }

// Record is one consent decision as stored. Times are Unix nanoseconds.
type Record struct {
	Seq          uint64 `json:"seq"`
	PID          uint64 `json:"pid"` // the profile chain: the profile the decision was recorded for
	Purpose      string `json:"purpose"`
	Status       string `json:"status"`
	LegalBasis   string `json:"legal_basis"`
	Jurisdiction string `json:"jurisdiction,omitempty"`
	Source       string `json:"source"`
	Policy       string `json:"policy_version,omitempty"`
	Evidence     string `json:"evidence,omitempty"`
	IPHash       string `json:"ip_hash,omitempty"` // salted hash of the IP address, never the address
	MessageID    string `json:"message_id,omitempty"`
	DecidedAt    int64  `json:"decided_at"`
	RecordedAt   int64  `json:"recorded_at"`
	Prev         string `json:"prev,omitempty"` // hash of the previous record of the same profile chain
}

// Stub is what remains of an erased record: its place in both chains.
type Stub struct {
	Seq      uint64 `json:"seq"`
	PID      uint64 `json:"pid"`
	Erased   bool   `json:"erased"`
	Hash     string `json:"hash"`
	Prev     string `json:"prev,omitempty"`
	ErasedAt int64  `json:"erased_at"`
}

// Stored is a decoded stored value: a live record or an erasure stub.
type Stored struct {
	Record *Record // nil for a stub
	Stub   *Stub   // nil for a live record
	Hash   Hash    // the record's hash (for a stub, the hash it keeps)
}

// Seq is the record's sequence number.
func (s Stored) Seq() uint64 {
	if s.Record != nil {
		return s.Record.Seq
	}
	return s.Stub.Seq
}

// PID is the profile chain the record belongs to.
func (s Stored) PID() uint64 {
	if s.Record != nil {
		return s.Record.PID
	}
	return s.Stub.PID
}

// Prev is the hash of the previous record of the same chain.
func (s Stored) Prev() string {
	if s.Record != nil {
		return s.Record.Prev
	}
	return s.Stub.Prev
}

// ErrCorrupt means stored bytes do not decode as a record.
var ErrCorrupt = errors.New("consent record does not decode")

// Encode returns the stored bytes of r, in the binary form (codec.go),
// and their hash.
func Encode(r *Record) ([]byte, Hash, error) {
	b := encodeRecord(make([]byte, 0, 160+len(r.Evidence)), r)
	return b, Sum(b), nil
}

// Decode reads stored bytes. The returned Hash of a live record is the hash
// of b; a stub's is the hash it keeps.
//
// A binary record (codec.go) is told by its first byte. JSON records, of
// dirs written before schema 7, and stubs are read by the million when the
// rules snapshot is built, so their decoder is goccy/go-json and the stub
// probe is skipped for bytes that cannot be a stub: a stub is written with the member "erased":true, and
// that sequence cannot occur inside a JSON string (its quotes would be
// escaped). Whatever the bytes, a damaged record is an ErrCorrupt, never a
// panic; tampering that still parses is what the hash chain catches.
func Decode(b []byte) (Stored, error) {
	if len(b) > 0 && b[0] == recordCodecVersion {
		r, err := decodeRecord(b)
		if err != nil {
			return Stored{}, err
		}
		return Stored{Record: r, Hash: Sum(b)}, nil
	}
	var s Stub
	if bytes.Contains(b, erasedMember) {
		if err := json.Unmarshal(b, &s); err != nil {
			return Stored{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	if s.Erased {
		h, err := ParseHash(s.Hash)
		if err != nil {
			return Stored{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return Stored{Stub: &s, Hash: h}, nil
	}
	var r Record
	if err := unmarshal(b, &r); err != nil {
		return Stored{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return Stored{Record: &r, Hash: Sum(b)}, nil
}

// unmarshal is goccy/go-json's Unmarshal with its panics on hostile input
// turned into errors.
func unmarshal(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed record: %v", r)
		}
	}()
	return gojson.Unmarshal(b, v)
}

var erasedMember = []byte(`"erased":true`)

// Erase turns a stored record into its stub's bytes.
func Erase(s Stored, at time.Time) ([]byte, error) {
	st := Stub{Seq: s.Seq(), PID: s.PID(), Erased: true, Hash: s.Hash.String(), Prev: s.Prev(), ErasedAt: at.UnixNano()}
	return json.Marshal(st)
}

// NextGlobal is the global chain hash after a record with hash rec.
func NextGlobal(prev, rec Hash) Hash {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(rec[:])
	var out Hash
	h.Sum(out[:0])
	return out
}

// ChainEntry is a global chain entry: the record's hash and the chain hash
// after it (64 bytes stored).
type ChainEntry struct {
	Record Hash
	Chain  Hash
}

func (c ChainEntry) append(b []byte) []byte {
	b = append(b, c.Record[:]...)
	return append(b, c.Chain[:]...)
}

// The global chain is stored in blocks of consecutive entries, one block
// per ingest transaction (a key per entry was one key in ten of a bulk
// ingest): chainBlockVersion, then 64 bytes per entry, the first being the
// entry of the sequence number the block is stored under.
const (
	chainBlockVersion = 1
	// ChainEntrySize is the stored size of one entry in a chain block.
	ChainEntrySize = 64
)

// AppendChainEntry appends e to chain block b, starting the block when b
// is empty.
func AppendChainEntry(b []byte, e ChainEntry) []byte {
	if len(b) == 0 {
		b = append(b, chainBlockVersion)
	}
	return e.append(b)
}

// ParseChainEntry decodes an entry.
func ParseChainEntry(b []byte) (ChainEntry, error) {
	var c ChainEntry
	if len(b) != 64 {
		return c, fmt.Errorf("%w: chain entry is %d bytes, want 64", ErrCorrupt, len(b))
	}
	copy(c.Record[:], b[:32])
	copy(c.Chain[:], b[32:])
	return c, nil
}

// Head is the stored head of a chain: the last sequence number and hash.
type Head struct {
	Seq  uint64
	Hash Hash
}

// Bytes encodes the head (40 bytes).
func (h Head) Bytes() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 40), h.Seq)
	return append(b, h.Hash[:]...)
}

// ParseHead decodes a head; nil or empty is the empty chain.
func ParseHead(b []byte) (Head, error) {
	var h Head
	if len(b) == 0 {
		return h, nil
	}
	if len(b) != 40 {
		return h, fmt.Errorf("%w: chain head is %d bytes, want 40", ErrCorrupt, len(b))
	}
	h.Seq = binary.BigEndian.Uint64(b)
	copy(h.Hash[:], b[8:])
	return h, nil
}

// RecordID is the text form of a record's sequence number ("c42").
func RecordID(seq uint64) string { return "c" + strconv.FormatUint(seq, 10) }

// ParseRecordID reads "c42".
func ParseRecordID(s string) (uint64, bool) {
	if len(s) < 2 || s[0] != 'c' {
		return 0, false
	}
	n, err := strconv.ParseUint(s[1:], 10, 64)
	return n, err == nil && n > 0
}

// HashIP returns the salted hash of an IP address, as stored in evidence.
func HashIP(salt []byte, ip string) string { return NewIPHasher(salt).Sum(ip) }

// IPHasher computes HashIP for one salt, reusing its HMAC state: the
// keyed pads are hashed once, not once per address. It is not safe for
// concurrent use.
type IPHasher struct {
	mac hash.Hash
	buf []byte
}

// NewIPHasher returns an IPHasher for salt.
func NewIPHasher(salt []byte) *IPHasher {
	return &IPHasher{mac: hmac.New(sha256.New, salt)}
}

// Sum is HashIP(salt, ip).
func (h *IPHasher) Sum(ip string) string {
	ip = strings.TrimSpace(ip)
	if ip == "" {
		return ""
	}
	h.mac.Reset()
	h.buf = append(append(h.buf[:0], "ip\x00"...), ip...)
	h.mac.Write(h.buf)
	const prefix = "hmac-sha256:"
	h.buf = h.mac.Sum(append(h.buf[:0], prefix...))
	out := make([]byte, len(prefix)+hex.EncodedLen(sha256.Size))
	copy(out, prefix)
	hex.Encode(out[len(prefix):], h.buf[len(prefix):])
	return string(out)
}

// Validate checks a record's fields against the configuration.
func (c *Config) Validate(r *Record) error {
	if !c.HasPurpose(r.Purpose) {
		return fmt.Errorf("unknown purpose %q (configured: %s)", r.Purpose, strings.Join(c.Purposes, ", "))
	}
	if !contains(Statuses, r.Status) {
		return fmt.Errorf("status %q: want one of %s", r.Status, strings.Join(Statuses, ", "))
	}
	if !contains(LegalBases, r.LegalBasis) {
		return fmt.Errorf("legal basis %q: want one of %s", r.LegalBasis, strings.Join(LegalBases, ", "))
	}
	if r.Source == "" {
		return errors.New("a consent record needs a source")
	}
	if r.DecidedAt == 0 {
		return errors.New("a consent record needs the time of the decision")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
