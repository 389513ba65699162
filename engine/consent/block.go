package consent

import (
	"encoding/binary"
	"fmt"
)

// A profile's records are stored one of two ways under the profile's
// consent keys ('c' pid seq):
//
//   - one record: its stored bytes (a Record in the binary form of
//     codec.go, or as JSON before schema 7; or a Stub's JSON),
//     under the record's own sequence number. Records set by hand, moved by
//     unmerge, and every record of a dir written before schema 5.
//
//   - a block: the records one ingest transaction made for the profile,
//     under the first one's sequence number (a key per record was a fifth
//     of the writes of a bulk ingest). Unmerge may take records out of a
//     block; what stays keeps the key:
//
//     recordBlockVersion  (uvarint seq  uvarint len  stored bytes)...
//
// The stored bytes of each record are exactly those its hash covers, in a
// block as alone. A block starts with recordBlockVersion, which no record
// does: a JSON record or stub starts with '{', a binary one with
// recordCodecVersion.
const recordBlockVersion = 1

// AppendBlockRecord appends the stored bytes of record seq to block b,
// starting the block when b is empty.
func AppendBlockRecord(b []byte, seq uint64, stored []byte) []byte {
	if len(b) == 0 {
		b = append(b, recordBlockVersion)
	}
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(len(stored)))
	return append(b, stored...)
}

// EachStored calls fn with the sequence number and stored bytes of every
// record in v, the value of the consent key whose sequence number is
// keySeq: a block's records in order, or v itself. The bytes are v's: fn
// must copy what it keeps beyond v's life. A block that does not parse is
// an ErrCorrupt error after the records before the damage.
func EachStored(keySeq uint64, v []byte, fn func(seq uint64, stored []byte) error) error {
	if len(v) == 0 || v[0] != recordBlockVersion {
		return fn(keySeq, v)
	}
	for b := v[1:]; len(b) > 0; {
		seq, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: record block stored as %s: bad sequence number", ErrCorrupt, RecordID(keySeq))
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return fmt.Errorf("%w: record block stored as %s: record %s runs past the block", ErrCorrupt, RecordID(keySeq), RecordID(seq))
		}
		b = b[n:]
		if err := fn(seq, b[:size]); err != nil {
			return err
		}
		b = b[size:]
	}
	return nil
}

// RewriteStored rebuilds v, the value of the consent key whose sequence
// number is keySeq, with fn's replacement for each record's stored bytes
// (nil drops the record), keeping its form: a record alone stays alone, a
// block stays a block. It returns nil when no record is left, and a block
// that does not parse as EachStored does, or fn's error.
func RewriteStored(keySeq uint64, v []byte, fn func(seq uint64, stored []byte) ([]byte, error)) ([]byte, error) {
	var out []byte
	block := len(v) > 0 && v[0] == recordBlockVersion
	err := EachStored(keySeq, v, func(seq uint64, b []byte) error {
		nb, err := fn(seq, b)
		switch {
		case err != nil:
			return err
		case nb == nil:
		case block:
			out = AppendBlockRecord(out, seq, nb)
		default:
			out = nb
		}
		return nil
	})
	return out, err
}

// A unit's head block holds the head of every profile chain the ingest
// transaction extended, HeadBlockEntrySize bytes each: the pid (8 bytes,
// big-endian) and the head (Head.Bytes). A key per head was 6% of the
// writes of a bulk ingest.
const HeadBlockEntrySize = 8 + 40

// AppendHeadBlockEntry appends pid's head to head block b.
func AppendHeadBlockEntry(b []byte, pid uint64, h Head) []byte {
	b = binary.BigEndian.AppendUint64(b, pid)
	return append(b, h.Bytes()...)
}

// EachHead calls fn with every pid and head in head block b, in order; a
// block of the wrong size is an ErrCorrupt error and calls fn for none.
func EachHead(b []byte, fn func(pid uint64, h Head)) error {
	if len(b)%HeadBlockEntrySize != 0 {
		return fmt.Errorf("%w: head block is %d bytes, not a multiple of %d", ErrCorrupt, len(b), HeadBlockEntrySize)
	}
	for ; len(b) > 0; b = b[HeadBlockEntrySize:] {
		h, _ := ParseHead(b[8:HeadBlockEntrySize]) // 40 bytes: cannot fail
		fn(binary.BigEndian.Uint64(b), h)
	}
	return nil
}
