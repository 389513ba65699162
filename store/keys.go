// Package store keeps Loupe's records in an embedded Badger database.
//
// The store knows keys and bytes; what the bytes mean (events, profiles,
// consent) belongs to the engine. Every record kind has a one-byte prefix so
// that each kind is one contiguous key range and prefix scans are natural.
// Integers in keys are fixed-width big-endian so that byte order is numeric
// order; times are Unix nanoseconds with the sign bit flipped for the same
// reason.
//
// # Key layout (schema version 7)
//
//	prefix  key                                   value
//	0x00    0x00 name                             meta: "schema" (uint32), "seq/<name>" counters, "secret" (HMAC salt)
//	'e'     'e' pid(8) time(8) seq(8)             events: engine-encoded Segment messages of pid, the newest at time, seq, and the links they made
//	'M'     'M' seq(8)                            message digests of one ingest unit (dedupe): version(1), then 16 bytes per messageId
//	'p'     'p' pid(8)                            profile record
//	'a'     'a' mergedPid(8)                      surviving pid(8): a merged-away profile id
//	'I'     'I' part(1) seq(8)                    identity index block: version(1), then (digest(16) pid(8))... for the identifiers whose digest falls in part; the pid may be merged away ('a' names the survivor)
//	'i'     'i' ident                             schema 5 and before: pid(8) of one identifier, ident = typeLen(1) type value
//	'L'     'L' pid(8) seq(8)                     links among pid's identifiers, regrouped by unmerge (schema 2 and 3: made by one ingest unit)
//	'r'     'r' seq(8)                            refused merge record
//	'R'     'R' pid(8) seq(8)                     refused merge by profile (empty value)
//	'S'     'S' seq(8)                            last-seen index block: version(1), then (pid(8) lastSeen(8))... for the profiles whose last seen an ingest unit moved; a pid with its top bit set marks a profile gone
//	's'     's' lastSeen(8) pid(8)                schema 6 and before: a profile by last seen (empty value)
//	'c'     'c' pid(8) seq(8)                     consent records stored under pid (the pid that owned them when recorded): one record, or a block of those an ingest unit made (engine/consent/block.go)
//	'C'     'C' seq(8)                            consent global chain block, first entry seq
//	'h'     'h' seq(8)                            profile chain heads an ingest unit left: (pid(8) head(40))..., seq as its 'C' block
//	'g'     'g' name 0x00 version(4)              segment definition version
//	'k'     'k' source                            sync checkpoint
//	'q'     'q' source 0x00 seq(8)                quarantined input
//	'u'     'u' seq(8)                            audit log entry
//	'd'     'd' id                                data-subject request
//	'x'     'x' hash(32)                          suppression entry (salted hash of an identifier)
//	'U'     'U' seq(8)                            unmerge record
//
// A pid is a profile id as a uint64; its text form is "p" followed by the
// decimal number.
//
// Schema version 1 kept one 'm' messageId key per event, naming where the
// event lived, one 'C' key per global consent chain entry, one 'l' key per
// link (under its first identifier), and a meta key per event with consent
// records ("consent/msg/" messageId). Nothing read the event's location,
// links are only ever read a profile at a time, unmerge can find an event's
// consent records in the profile's own, and together they were nearly half
// the keys of a bulk ingest. Version 2 keeps the messageIds' digests in one
// 'M' block per ingest unit (the engine holds them all in memory for
// dedupe), the chain in blocks of consecutive entries, and a profile's links
// of one unit in one 'L' block. Opening a version 1 dir migrates it. Version
// 2 also writes a profile's events of one unit as one 'e' value; the
// single-event values of version 1 are still read as they are. Version 3
// compresses those values (engine/codec.go); the uncompressed ones of
// version 2 are still read, so opening a version 2 dir only records the new
// version, which keeps older builds from misreading what this one writes.
// Version 4 stores the links a unit made for a profile in the value of the
// unit's events of that profile rather than as an 'L' block (a link is
// always made by one of those events): 1.4M keys fewer in the 1M demo.
// 'L' blocks are still read, and unmerge still writes them; opening a
// version 3 dir only records the new version. Version 5 stores the
// consent records an ingest unit makes for a profile as one block under
// the first one's sequence number instead of a key each (2.1M keys fewer
// in the 1M demo), and profile records (engine/record_codec.go) write
// each distinct provenance of their trait values once instead of after
// every value. An ingest unit stores the heads of the profile chains it
// extends in one 'h' block instead of a meta key each (0.74M keys fewer);
// the engine finds a chain's head among its records, and the meta keys,
// still read, are written only by `consent set` and unmerge. A merge no
// longer rewrites the identity index entries of
// the identifiers it moves: they keep naming the merged-away pid, whose
// 'a' key names the survivor. Single records and version 4's profile
// records are still read, and version 4's index entries name live pids,
// so opening a version 4 dir only records the new version. Version 6
// replaces the identity index's key per identifier ('i', 5.4M keys in the
// 1M demo, two fifths of all the keys an ingest wrote; skipping them cut
// its CPU by a fifth to a third) with blocks: each ingest unit writes the
// identifiers it attaches as (digest, pid) entries in one block per
// partition, 64 partitions by the digest's first six bits, so a lookup
// reads one partition's blocks and the engine loads them all for an
// ingest. The digest is the first 128 bits of SHA-256 over the dir's
// secret, the identifier's type, 0x00 and its value, so the index no
// longer holds identifiers in plain text. Later blocks of a
// partition override earlier ones (unmerge reassigns identifiers by
// writing new entries). Opening a version 5 dir moves its 'i' keys into
// blocks. Version 7 does the same for the last-seen index: a key per
// profile ('s', written again and its old key deleted whenever a later
// ingest unit moved the profile's last seen: 1.78M writes in the 1M demo,
// 28% of the entries its ingest committed; in blocks the ingest takes
// 6-11% less CPU) became one 'S' block per ingest unit of (pid, last seen)
// entries. Later blocks, and later entries of a block, override earlier
// ones; readers load them all and sort (engine/lastseen.go). Opening a
// version 6 dir moves its 's' keys into blocks. Version 7 also stores new
// consent records in a binary form (engine/consent/codec.go) instead of
// JSON, which is still read.
package store

import (
	"encoding/binary"
	"errors"
	"math"
)

// SchemaVersion is the on-disk layout this build reads and writes.
const SchemaVersion = 7

// Record kind prefixes; see the package documentation.
const (
	PrefixMeta          byte = 0x00
	PrefixEvent         byte = 'e'
	PrefixMessage       byte = 'M'
	PrefixMessageV1     byte = 'm' // schema 1 only; see the package documentation
	PrefixProfile       byte = 'p'
	PrefixMerged        byte = 'a'
	PrefixIdentity      byte = 'i' // schema 5 and before; see the package documentation
	PrefixIdentBlock    byte = 'I'
	PrefixLinks         byte = 'L'
	PrefixLinkV1        byte = 'l' // schema 1 only; see the package documentation
	PrefixRefused       byte = 'r'
	PrefixRefusedByPID  byte = 'R'
	PrefixLastSeen      byte = 's' // schema 6 and before; see the package documentation
	PrefixLastSeenBlock byte = 'S'
	PrefixConsent       byte = 'c'
	PrefixConsentChain  byte = 'C'
	PrefixConsentHeads  byte = 'h'
	PrefixSegment       byte = 'g'
	PrefixCheckpoint    byte = 'k'
	PrefixQuarantine    byte = 'q'
	PrefixAudit         byte = 'u'
	PrefixRequest       byte = 'd'
	PrefixSuppression   byte = 'x'
	PrefixUnmerge       byte = 'U'
)

// ErrBadKey reports a key that does not have the layout its kind expects.
var ErrBadKey = errors.New("store: malformed key")

// MetaKey is the key of a named meta value.
func MetaKey(name string) []byte { return append([]byte{PrefixMeta}, name...) }

// AppendUint64 appends v big-endian.
func AppendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// AppendUint32 appends v big-endian.
func AppendUint32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// AppendTime appends Unix nanoseconds so that byte order is time order,
// negative times included.
func AppendTime(b []byte, unixNano int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(unixNano)^(1<<63))
}

// Uint64 reads a big-endian uint64 at b[off:].
func Uint64(b []byte, off int) uint64 { return binary.BigEndian.Uint64(b[off : off+8]) }

// Time reads a time written by AppendTime at b[off:].
func Time(b []byte, off int) int64 {
	return int64(binary.BigEndian.Uint64(b[off:off+8]) ^ (1 << 63))
}

// PIDKey is prefix + pid, the key shape of profiles and merged ids.
func PIDKey(prefix byte, pid uint64) []byte { return AppendUint64([]byte{prefix}, pid) }

// EventKey is the key of one event of profile pid.
func EventKey(pid uint64, unixNano int64, seq uint64) []byte {
	b := make([]byte, 0, 25)
	b = append(b, PrefixEvent)
	b = AppendUint64(b, pid)
	b = AppendTime(b, unixNano)
	return AppendUint64(b, seq)
}

// ParseEventKey splits an event key.
func ParseEventKey(k []byte) (pid uint64, unixNano int64, seq uint64, err error) {
	if len(k) != 25 || k[0] != PrefixEvent {
		return 0, 0, 0, ErrBadKey
	}
	return Uint64(k, 1), Time(k, 9), Uint64(k, 17), nil
}

// EventPrefix is the prefix of all events of profile pid.
func EventPrefix(pid uint64) []byte { return PIDKey(PrefixEvent, pid) }

// MessageBlockKey is the key of message digest block seq.
func MessageBlockKey(seq uint64) []byte { return SeqKey(PrefixMessage, seq) }

// IdentKey encodes an identifier (type, value) for use inside keys.
func IdentKey(typ, value string) []byte {
	return AppendIdentKey(make([]byte, 0, 1+len(typ)+len(value)), typ, value)
}

// AppendIdentKey appends the IdentKey encoding of (typ, value) to b.
func AppendIdentKey(b []byte, typ, value string) []byte {
	if len(typ) > math.MaxUint8 {
		typ = typ[:math.MaxUint8]
	}
	b = append(b, byte(len(typ)))
	b = append(b, typ...)
	return append(b, value...)
}

// ParseIdentKey splits an identifier encoded by IdentKey.
func ParseIdentKey(b []byte) (typ, value string, err error) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", "", ErrBadKey
	}
	n := int(b[0])
	return string(b[1 : 1+n]), string(b[1+n:]), nil
}

// IdentityKey is schema 5's identity index key of an identifier.
func IdentityKey(typ, value string) []byte {
	return AppendIdentKey(append(make([]byte, 0, 2+len(typ)+len(value)), PrefixIdentity), typ, value)
}

// IdentPartitions is how many partitions the identity index has.
const IdentPartitions = 64

// IdentBlockKey is the key of identity index block seq of partition part.
func IdentBlockKey(part byte, seq uint64) []byte {
	return AppendUint64([]byte{PrefixIdentBlock, part}, seq)
}

// IdentPartitionPrefix is the prefix of partition part's identity blocks.
func IdentPartitionPrefix(part byte) []byte { return []byte{PrefixIdentBlock, part} }

// LinkBlockKey is the key of a block of links among the identifiers of
// profile pid.
func LinkBlockKey(pid, seq uint64) []byte { return PIDSeqKey(PrefixLinks, pid, seq) }

// LinkKeyV1 is schema 1's key of the link from identifier a to identifier b
// (both encoded with IdentKey), one key per link; the migration reads them.
func LinkKeyV1(a, b []byte) []byte {
	k := make([]byte, 0, 3+len(a)+len(b))
	k = append(k, PrefixLinkV1)
	k = binary.BigEndian.AppendUint16(k, uint16(len(a)))
	k = append(k, a...)
	return append(k, b...)
}

// ParseLinkKeyV1 splits a schema 1 link key into its two encoded
// identifiers.
func ParseLinkKeyV1(k []byte) (a, b []byte, err error) {
	if len(k) < 3 || k[0] != PrefixLinkV1 {
		return nil, nil, ErrBadKey
	}
	n := int(binary.BigEndian.Uint16(k[1:3]))
	if len(k) < 3+n {
		return nil, nil, ErrBadKey
	}
	return k[3 : 3+n], k[3+n:], nil
}

// SeqKey is prefix + seq, the key shape of refused merges, the consent
// chain and the audit log.
func SeqKey(prefix byte, seq uint64) []byte { return AppendUint64([]byte{prefix}, seq) }

// PIDSeqKey is prefix + pid + seq, the key shape of per-profile records.
func PIDSeqKey(prefix byte, pid, seq uint64) []byte {
	return AppendUint64(AppendUint64([]byte{prefix}, pid), seq)
}

// LastSeenBlockKey is the key of last-seen index block seq.
func LastSeenBlockKey(seq uint64) []byte { return SeqKey(PrefixLastSeenBlock, seq) }

// LastSeenKey is schema 6's last-seen index key of a profile; the
// migration reads them.
func LastSeenKey(unixNano int64, pid uint64) []byte {
	return AppendUint64(AppendTime([]byte{PrefixLastSeen}, unixNano), pid)
}

// NameKey is prefix + name, for records keyed by a name (checkpoints,
// requests).
func NameKey(prefix byte, name string) []byte { return append([]byte{prefix}, name...) }
