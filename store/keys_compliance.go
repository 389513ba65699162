package store

// Keys of the consent ledger, data-subject requests, the audit log and
// erasure suppression. The prefixes are reserved in keys.go; the meta keys
// below hold the chains' heads and counters.
//
//	'c' pid(8) seq(8)      consent record, stored under the pid that owns it now
//	                       (the record itself names the profile chain it belongs to)
//	'C' seq(8)             global consent chain block: version(1), then record hash(32)
//	                       chain hash(32) for seq and each following seq it holds
//	'u' seq(8)             audit log entry (JSON, hash-chained)
//	'd' id                 data-subject request (JSON; profile id only, no personal data)
//	'x' hash(32)           suppression entry: HMAC-SHA256(secret, type 0x00 value)
//	0x00 "consent/head"          global chain head: seq(8) hash(32)
//	0x00 "consent/phead/" pid(8) profile chain head: seq(8) hash(32)
//	0x00 "audit/head"            audit chain head: seq(8) hash(32)
//	0x00 "seq/dsr"               request counter
//	0x00 "secret"                32 random bytes: the salt of every salted hash

// ConsentKey is the key of consent record seq stored under pid.
func ConsentKey(pid, seq uint64) []byte { return PIDSeqKey(PrefixConsent, pid, seq) }

// ConsentPrefix is the prefix of the consent records stored under pid.
func ConsentPrefix(pid uint64) []byte { return PIDKey(PrefixConsent, pid) }

// ParseConsentKey splits a consent record key.
func ParseConsentKey(k []byte) (pid, seq uint64, err error) {
	if len(k) != 17 || k[0] != PrefixConsent {
		return 0, 0, ErrBadKey
	}
	return Uint64(k, 1), Uint64(k, 9), nil
}

// ConsentChainKey is the key of the global consent chain block whose
// first entry is seq.
func ConsentChainKey(seq uint64) []byte { return SeqKey(PrefixConsentChain, seq) }

// ConsentHeadKey is the meta key of the global consent chain's head.
func ConsentHeadKey() []byte { return MetaKey("consent/head") }

// ConsentProfileHeadPrefix is the prefix of every profile chain's head.
func ConsentProfileHeadPrefix() []byte { return MetaKey("consent/phead/") }

// ConsentProfileHeadKey is the meta key of a profile chain's head.
func ConsentProfileHeadKey(pid uint64) []byte { return AppendUint64(ConsentProfileHeadPrefix(), pid) }

// ConsentHeadBlockKey is the key of the block of profile chain heads an
// ingest unit left, stored under the sequence number of its first
// consent record (that of its global chain block too).
func ConsentHeadBlockKey(seq uint64) []byte { return SeqKey(PrefixConsentHeads, seq) }

// AuditKey is the key of audit entry seq.
func AuditKey(seq uint64) []byte { return SeqKey(PrefixAudit, seq) }

// RequestKey is the key of data-subject request id.
func RequestKey(id string) []byte { return NameKey(PrefixRequest, id) }

// SuppressionKey is the key of a suppression entry.
func SuppressionKey(hash [32]byte) []byte { return append([]byte{PrefixSuppression}, hash[:]...) }
