package consent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// chain builds stored records and chain entries the way the engine does.
type chain struct {
	recs    map[uint64][]byte
	keyPID  map[uint64]uint64
	entries [][]byte
	global  Head
	last    map[uint64]Head
}

func newChain() *chain {
	return &chain{recs: map[uint64][]byte{}, keyPID: map[uint64]uint64{}, last: map[uint64]Head{}}
}

func (c *chain) add(t *testing.T, r Record) {
	t.Helper()
	c.addEncoded(t, r, func(r *Record) ([]byte, Hash, error) { return Encode(r) })
}

// addJSON adds r stored as JSON, as dirs before schema 7 hold records.
func (c *chain) addJSON(t *testing.T, r Record) {
	t.Helper()
	c.addEncoded(t, r, func(r *Record) ([]byte, Hash, error) {
		b, err := json.Marshal(r)
		return b, Sum(b), err
	})
}

func (c *chain) addEncoded(t *testing.T, r Record, encode func(*Record) ([]byte, Hash, error)) {
	t.Helper()
	r.Seq = c.global.Seq + 1
	if h := c.last[r.PID]; h.Seq != 0 {
		r.Prev = h.Hash.String()
	}
	b, h, err := encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	c.recs[r.Seq], c.keyPID[r.Seq] = b, r.PID
	g := NextGlobal(c.global.Hash, h)
	c.entries = append(c.entries, AppendChainEntry(nil, ChainEntry{Record: h, Chain: g})[1:])
	c.global = Head{Seq: r.Seq, Hash: g}
	c.last[r.PID] = Head{Seq: r.Seq, Hash: h}
}

func (c *chain) verify() []Break {
	v := NewVerifier()
	for seq, b := range c.recs {
		v.AddRecord(c.keyPID[seq], seq, b)
	}
	// Blocks of two entries, as if each ingest unit recorded two.
	for i := 0; i < len(c.entries); i += 2 {
		block := append([]byte{chainBlockVersion}, c.entries[i]...)
		if i+1 < len(c.entries) {
			block = append(block, c.entries[i+1]...)
		}
		v.AddChainBlock(uint64(i+1), block)
	}
	return v.Finish(c.global.Bytes(), c.last)
}

func rec(pid uint64, purpose, status string, at time.Time) Record {
	return Record{PID: pid, Purpose: purpose, Status: status, LegalBasis: "consent", Source: "banner", DecidedAt: at.UnixNano(), RecordedAt: at.UnixNano()}
}

func sample(t *testing.T) *chain {
	c := newChain()
	c.add(t, rec(1, "analytics", Granted, t0))
	c.add(t, rec(2, "analytics", Denied, t0))
	c.add(t, rec(1, "marketing_email", Granted, t0.Add(time.Hour)))
	c.add(t, rec(1, "marketing_email", Withdrawn, t0.Add(2*time.Hour)))
	c.add(t, rec(2, "advertising", Granted, t0.Add(3*time.Hour)))
	return c
}

// A dir migrated from schema 6 holds JSON records, and new binary ones
// after them in the same chains.
func TestChainsOfJSONAndBinaryRecordsVerify(t *testing.T) {
	c := newChain()
	c.addJSON(t, rec(1, "analytics", Granted, t0))
	c.addJSON(t, rec(2, "analytics", Denied, t0))
	c.add(t, rec(1, "marketing_email", Granted, t0.Add(time.Hour)))
	c.add(t, rec(2, "advertising", Granted, t0.Add(3*time.Hour)))
	if br := c.verify(); len(br) != 0 {
		t.Fatalf("clean chain has breaks: %+v", br)
	}
	if c.recs[1][0] != '{' || c.recs[3][0] != recordCodecVersion {
		t.Fatalf("setup: records stored as %q and %q", c.recs[1][:1], c.recs[3][:1])
	}
	b := []byte(string(c.recs[1]))
	b[strings.Index(string(b), `"granted"`)+1] ^= 0x01
	c.recs[1] = b
	if br := c.verify(); len(br) == 0 || br[0].Record != "c1" {
		t.Errorf("a flipped JSON record: %+v", br)
	}
}

func TestChainsVerify(t *testing.T) {
	c := sample(t)
	if br := c.verify(); len(br) != 0 {
		t.Fatalf("clean chain has breaks: %+v", br)
	}
}

func TestFlippedByteNamesRecordInBothChains(t *testing.T) {
	for _, seq := range []uint64{1, 3, 4, 5} { // middle and last records of their profiles
		c := sample(t)
		b := []byte(string(c.recs[seq]))
		st, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		b[strings.Index(string(b), st.Record.Status)] ^= 0x01 // "granted" -> "franted": it still decodes
		c.recs[seq] = b
		br := c.verify()
		var global, profile bool
		for _, x := range br {
			if x.Record != RecordID(seq) {
				t.Errorf("seq %d: break names %s: %+v", seq, x.Record, x)
				continue
			}
			global = global || x.Chain == "global"
			profile = profile || x.Chain == "profile"
		}
		if !global || !profile {
			t.Errorf("seq %d: want a break in both chains naming %s, got %+v", seq, RecordID(seq), br)
		}
	}
}

func TestCorruptJSONAndChainEntry(t *testing.T) {
	c := sample(t)
	c.recs[2] = append([]byte{'x'}, c.recs[2]...)
	br := c.verify()
	found := false
	for _, x := range br {
		if x.Record == "c2" && strings.Contains(x.What, "do not decode") {
			found = true
		}
	}
	if !found {
		t.Errorf("undecodable record not named: %+v", br)
	}

	c = sample(t)
	c.entries[2][40] ^= 0xff
	br = c.verify()
	if len(br) == 0 || br[0].Record != "c3" || br[0].Chain != "global" {
		t.Errorf("altered chain entry: %+v", br)
	}

	c = sample(t)
	delete(c.recs, 5)
	if br := c.verify(); len(br) == 0 {
		t.Error("removed record not noticed")
	}

	// A chain block cut short or of another version is named, not read.
	for _, block := range [][]byte{nil, {chainBlockVersion}, append([]byte{chainBlockVersion}, make([]byte, 63)...), append([]byte{9}, make([]byte, 64)...)} {
		v := NewVerifier()
		v.AddChainBlock(1, block)
		if br := v.Finish(nil, nil); len(br) == 0 || br[0].Record != "c1" || !strings.Contains(br[0].What, "chain block") {
			t.Errorf("malformed block of %d bytes: %+v", len(block), br)
		}
	}
}

func TestErasedStubKeepsChains(t *testing.T) {
	c := sample(t)
	for _, seq := range []uint64{1, 3, 4} {
		s, err := Decode(c.recs[seq])
		if err != nil {
			t.Fatal(err)
		}
		b, err := Erase(s, t0.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "marketing") || strings.Contains(string(b), "banner") {
			t.Errorf("stub keeps content: %s", b)
		}
		c.recs[seq] = b
	}
	if br := c.verify(); len(br) != 0 {
		t.Fatalf("erased chain has breaks: %+v", br)
	}
	// A stub whose kept hash is altered is still caught.
	var st Stub
	json.Unmarshal(c.recs[3], &st)
	st.Hash = strings.Repeat("0", 64)
	c.recs[3], _ = json.Marshal(st)
	if br := c.verify(); len(br) == 0 {
		t.Error("altered stub not noticed")
	}
}

func TestMovedRecordKeepsProfileChain(t *testing.T) {
	c := sample(t)
	c.keyPID[3] = 9 // unmerge moved it under another pid: still p1's chain
	if br := c.verify(); len(br) != 0 {
		t.Fatalf("breaks after a move: %+v", br)
	}
}

func compiled(t *testing.T) *Config {
	cfg := DefaultConfig()
	if err := cfg.Compile(); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func ptrs(rs ...Record) []*Record {
	out := make([]*Record, len(rs))
	for i := range rs {
		rs[i].Seq = uint64(i + 1)
		out[i] = &rs[i]
	}
	return out
}

func TestStateAtNewestWins(t *testing.T) {
	cfg := compiled(t)
	// Two profiles' trails, as read after a merge: the user withdrew at
	// t0+1h, the anonymous visitor granted at t0+2h.
	recs := ptrs(
		rec(1, "marketing_email", Granted, t0),
		rec(1, "marketing_email", Withdrawn, t0.Add(time.Hour)),
		rec(2, "marketing_email", Granted, t0.Add(2*time.Hour)),
		rec(2, "analytics", Granted, t0),
		rec(1, "analytics", Withdrawn, t0.Add(3*time.Hour)),
	)
	cases := []struct {
		at      time.Time
		purpose string
		status  string
		src     string
	}{
		{t0.Add(-time.Minute), "marketing_email", Denied, ""},
		{t0, "marketing_email", Granted, "c1"},
		{t0.Add(90 * time.Minute), "marketing_email", Withdrawn, "c2"},
		{t0.Add(2 * time.Hour), "marketing_email", Granted, "c3"}, // later anonymous grant beats earlier withdrawal
		{t0.Add(2 * time.Hour), "analytics", Granted, "c4"},
		{t0.Add(4 * time.Hour), "analytics", Withdrawn, "c5"}, // later withdrawal beats earlier grant
	}
	for _, tc := range cases {
		d := cfg.StateAt(recs, tc.at, "")[tc.purpose]
		if d.Status != tc.status || d.SourceRecord != tc.src || d.Default != (tc.src == "") {
			t.Errorf("%s at %s: got %+v, want %s from %q", tc.purpose, tc.at, d, tc.status, tc.src)
		}
	}
}

func TestJurisdictionDefaults(t *testing.T) {
	cfg := compiled(t)
	gdpr := cfg.StateAt(nil, t0, "")
	for _, p := range cfg.Purposes {
		if d := gdpr[p]; d.Status != Denied || !d.Default || d.Jurisdiction != "GDPR" {
			t.Errorf("GDPR default %s = %+v", p, d)
		}
	}
	for _, j := range []string{"CCPA", "cpra"} {
		st := cfg.StateAt(nil, t0, j)
		if d := st[SaleOrSharing]; d.Status != Granted || !d.Default {
			t.Errorf("%s sale_or_sharing default = %+v", j, d)
		}
		if d := st["marketing_email"]; d.Status != Denied {
			t.Errorf("%s marketing_email default = %+v", j, d)
		}
	}
	// The profile's own records decide its jurisdiction.
	r := rec(1, "analytics", Granted, t0)
	r.Jurisdiction = "CPRA"
	st := cfg.StateAt(ptrs(r), t0.Add(time.Hour), "")
	if d := st[SaleOrSharing]; d.Status != Granted || !d.Default || d.Jurisdiction != "CPRA" {
		t.Errorf("CPRA profile sale_or_sharing = %+v", d)
	}
	// Configurable.
	custom := DefaultConfig()
	custom.Jurisdictions = map[string]JurisdictionRule{"GDPR": {OptOut: []string{"analytics"}}}
	if err := custom.Compile(); err != nil {
		t.Fatal(err)
	}
	if d := custom.StateAt(nil, t0, "")["analytics"]; d.Status != Granted || !d.Default {
		t.Errorf("configured opt-out analytics = %+v", d)
	}
	bad := DefaultConfig()
	bad.Jurisdictions = map[string]JurisdictionRule{"X": {OptOut: []string{"nope"}}}
	if err := bad.Compile(); err == nil {
		t.Error("unknown purpose in opt_out accepted")
	}
}

func TestCategoryMapping(t *testing.T) {
	cfg := compiled(t)
	cases := map[string][]string{
		"Analytics": {"analytics"}, "ADVERTISING": {"advertising"}, "Marketing": {"marketing_email"},
		"Functional": {"personalization"}, "personalization": {"personalization"}, "Unknown": nil,
		" Analytics ": {"analytics"}, "aDVERTISING": {"advertising"}, "Personalization": {"personalization"},
	}
	for cat, want := range cases {
		if got := cfg.CategoryPurposes(cat); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s -> %v, want %v", cat, got, want)
		}
	}
	custom := DefaultConfig()
	custom.Categories = map[string][]string{"C0004": {"advertising", SaleOrSharing}}
	if err := custom.Compile(); err != nil {
		t.Fatal(err)
	}
	if got := custom.CategoryPurposes("c0004"); len(got) != 2 {
		t.Errorf("custom map: %v", got)
	}
	if custom.CategoryPurposes("Analytics") != nil {
		t.Error("a configured map replaces the defaults")
	}
}

func TestChangeStatus(t *testing.T) {
	on := Signal{Granted: true, ChangeOnly: true}
	off := Signal{Granted: false, ChangeOnly: true}
	cases := []struct {
		s    Signal
		cur  Current
		ok   bool
		want string
	}{
		{on, Current{}, false, Granted},
		{off, Current{}, false, Denied},
		{on, Current{Status: Granted}, true, ""},
		{off, Current{Status: Granted}, true, Withdrawn},
		{off, Current{Status: Withdrawn}, true, ""},
		{off, Current{Status: Denied}, true, ""},
		{on, Current{Status: Denied}, true, Granted},
		{Signal{Status: Granted}, Current{Status: Granted}, true, Granted}, // explicit events always record
	}
	for i, tc := range cases {
		if got := ChangeStatus(tc.s, tc.cur, tc.ok); got != tc.want {
			t.Errorf("case %d: got %q want %q", i, got, tc.want)
		}
	}
}

func TestReceipt(t *testing.T) {
	cfg := compiled(t)
	cfg.Controller.Name = "Initech"
	recs := ptrs(rec(1, "marketing_email", Granted, t0), rec(1, "analytics", Denied, t0.Add(time.Hour)))
	hashes := map[uint64]Hash{1: Sum([]byte("a")), 2: Sum([]byte("b"))}
	r := cfg.BuildReceipt("p1", recs, hashes, "marketing_email", t0.Add(2*time.Hour))
	b, _ := json.Marshal(r)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"version", "jurisdiction", "consentTimestamp", "collectionMethod", "consentReceiptID", "language", "piiPrincipalId", "piiControllers", "policyUrl", "services", "sensitive", "spiCat"} {
		if _, ok := m[k]; !ok {
			t.Errorf("receipt lacks %s", k)
		}
	}
	if r.Version != "KI-CR-v1.1.0" || len(r.Services[0].Purposes) != 1 || r.Services[0].Purposes[0].Status != Granted ||
		len(r.Evidence.Records) != 1 || r.Evidence.Records[0].Hash != hashes[1].String() || r.ConsentTimestamp != t0.Unix() {
		t.Errorf("receipt: %s", b)
	}
	r2 := cfg.BuildReceipt("p1", recs, hashes, "marketing_email", t0.Add(5*time.Hour))
	if r2.ConsentReceiptID != r.ConsentReceiptID {
		t.Error("receipt id is not stable")
	}
}

func TestHeadAndEntryRoundTrip(t *testing.T) {
	h := Head{Seq: 42, Hash: Sum([]byte("x"))}
	g, err := ParseHead(h.Bytes())
	if err != nil || g != h {
		t.Fatalf("head round trip: %v %v", g, err)
	}
	if _, ok := ParseRecordID("c42"); !ok {
		t.Error("ParseRecordID")
	}
	if HashIP([]byte("salt"), "203.0.113.9") == HashIP([]byte("pepper"), "203.0.113.9") {
		t.Error("salt ignored")
	}
	if strings.Contains(HashIP([]byte("s"), "203.0.113.9"), "203.0") {
		t.Error("ip in hash")
	}
}

// TestDecodeDamagedBytes: every truncation of a stored record is refused as
// corrupt, and no flipped byte makes Decode panic.
func TestDecodeDamagedBytes(t *testing.T) {
	r := rec(7, "analytics", Granted, t0)
	r.Seq = 3
	b, h, err := Encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil || got.Record == nil || *got.Record != r || got.Hash != h {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for n := 0; n < len(b); n++ {
		if _, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: err %v, want ErrCorrupt", n, err)
		}
	}
	for i := range b {
		for _, x := range []byte{0xff, '"', '{', '\\', 0} {
			if b[i] == x {
				continue
			}
			d := append([]byte(nil), b...)
			d[i] = x
			if s, err := Decode(d); err == nil && s.Record != nil && s.Hash == h {
				t.Fatalf("byte %d set to %q: decoded with the original hash", i, x)
			}
		}
	}
}

// oddRecords have fields that JSON must escape (HTML characters, line and
// paragraph separators, quotes, control bytes, bytes that are not UTF-8),
// extreme numbers, empty optional fields, and each form of Prev.
func oddRecords() []Record {
	h := Sum([]byte("previous"))
	return []Record{
		{Seq: 1, PID: 2, Purpose: "marketing", Status: "granted", LegalBasis: "consent", Source: "banner", DecidedAt: 3, RecordedAt: 4},
		{Seq: 1<<64 - 1, PID: 7, Purpose: "a<b>&c", Status: "denied", LegalBasis: "consent", Jurisdiction: "GDPR",
			Source: "x\u2028y\u2029z", Policy: "v\"1\\", Evidence: "tab\there\x01\x1f", IPHash: "\xff\xfeip", MessageID: "é💡",
			DecidedAt: -5, RecordedAt: 1 << 62, Prev: "sha256:00"},
		{Seq: 9, PID: 1 << 40, Purpose: "analytics", Status: "withdrawn", LegalBasis: "consent", Source: "event",
			MessageID: "m-1", DecidedAt: 1, RecordedAt: 2, Prev: h.String()},
		{Seq: 10, PID: 3, Purpose: "analytics", Status: "granted", LegalBasis: "consent", Source: "event",
			Prev: strings.ToUpper(h.String())}, // a hash, but not as the engine writes it
	}
}

// TestRecordCodec: Encode writes the binary form, which decodes to the
// same record and encodes to the same bytes again; the JSON form of dirs
// written before schema 7 still decodes.
func TestRecordCodec(t *testing.T) {
	for _, r := range oddRecords() {
		b, h, err := Encode(&r)
		if err != nil {
			t.Fatal(err)
		}
		if h != Sum(b) || b[0] != recordCodecVersion {
			t.Errorf("%+v: hash %v of % x", r, h, b)
		}
		s, err := Decode(b)
		if err != nil || s.Record == nil || *s.Record != r || s.Hash != h {
			t.Fatalf("decoded %+v (%v), want %+v", s.Record, err, r)
		}
		if again, _, _ := Encode(s.Record); string(again) != string(b) {
			t.Errorf("encoded again:\n% x\nwas\n% x", again, b)
		}
		if !utf8.ValidString(r.IPHash) {
			continue // JSON cannot hold it as it is
		}
		j, _ := json.Marshal(&r)
		if s, err := Decode(j); err != nil || *s.Record != r || s.Hash != Sum(j) {
			t.Errorf("JSON form %s decoded to %+v (%v)", j, s.Record, err)
		}
	}
}

// TestDamagedBinaryRecord: every cut of a binary record, bytes after it
// and an unknown Prev form are ErrCorrupt, never a panic.
func TestDamagedBinaryRecord(t *testing.T) {
	for _, r := range oddRecords() {
		b, _, _ := Encode(&r)
		for n := 1; n < len(b); n++ {
			if _, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%d of %d bytes: %v", n, len(b), err)
			}
		}
		if _, err := Decode(append(b[:len(b):len(b)], 0)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("a byte after the record: %v", err)
		}
	}
	b, _, _ := Encode(&Record{Seq: 1, PID: 1, Purpose: "analytics", Status: Granted})
	b[len(b)-1] = 7 // the Prev form
	if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown Prev form: %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range oddRecords() {
		b, _, _ := Encode(&r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil || s.Record == nil || len(b) == 0 || b[0] != recordCodecVersion {
			return
		}
		// What decodes encodes to bytes that decode the same.
		again, _, _ := Encode(s.Record)
		if s2, err := Decode(again); err != nil || *s2.Record != *s.Record {
			t.Fatalf("% x decoded to %+v; encoded again, %+v (%v)", b, s.Record, s2.Record, err)
		}
	})
}

// TestIPHasherMatchesHMAC checks the reused HMAC state against a fresh
// HMAC-SHA256 for each address, one hasher serving several in turn.
func TestIPHasherMatchesHMAC(t *testing.T) {
	salt := []byte("0123456789abcdef0123456789abcdef")
	h := NewIPHasher(salt)
	for _, ip := range []string{"203.0.113.7", " 2001:db8::1 ", "203.0.113.7", "10.0.0.1", ""} {
		var want string
		if trimmed := strings.TrimSpace(ip); trimmed != "" {
			m := hmac.New(sha256.New, salt)
			m.Write([]byte("ip\x00" + trimmed))
			want = "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))
		}
		if got := h.Sum(ip); got != want {
			t.Errorf("Sum(%q) = %q, want %q", ip, got, want)
		}
		if got := HashIP(salt, ip); got != want {
			t.Errorf("HashIP(%q) = %q, want %q", ip, got, want)
		}
	}
}

func TestRecordBlock(t *testing.T) {
	recs := map[uint64][]byte{}
	var block []byte
	for _, seq := range []uint64{3, 9, 1 << 40} {
		b, _, err := Encode(&Record{Seq: seq, PID: 1, Purpose: "analytics", Status: Granted, LegalBasis: "consent", Source: "banner", DecidedAt: 1})
		if err != nil {
			t.Fatal(err)
		}
		recs[seq] = b
		block = AppendBlockRecord(block, seq, b)
	}
	var seqs []uint64
	err := EachStored(3, block, func(seq uint64, b []byte) error {
		if string(b) != string(recs[seq]) {
			t.Errorf("c%d: %s, want %s", seq, b, recs[seq])
		}
		seqs = append(seqs, seq)
		return nil
	})
	if err != nil || len(seqs) != 3 || seqs[2] != 1<<40 {
		t.Fatalf("block: %v %v", seqs, err)
	}
	// A record alone is its own value, under its key's sequence number.
	seqs = nil
	if err := EachStored(9, recs[9], func(seq uint64, b []byte) error { seqs = append(seqs, seq); return nil }); err != nil || len(seqs) != 1 || seqs[0] != 9 {
		t.Fatalf("alone: %v %v", seqs, err)
	}
	// Cut anywhere past the version byte, a block gives the whole records
	// before the cut and an ErrCorrupt, or ends cleanly between records.
	for cut := 1; cut < len(block); cut++ {
		n := 0
		err := EachStored(3, block[:cut], func(seq uint64, b []byte) error {
			if string(b) != string(recs[seq]) {
				t.Fatalf("cut at %d: c%d is %s", cut, seq, b)
			}
			n++
			return nil
		})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if err == nil && n == 3 {
			t.Fatalf("cut at %d read all three records", cut)
		}
	}
}

func TestRewriteStoredKeepsTheForm(t *testing.T) {
	rec := func(seq uint64) []byte {
		b, _, _ := Encode(&Record{Seq: seq, PID: 1, Purpose: "analytics", Status: Granted})
		return b
	}
	block := AppendBlockRecord(AppendBlockRecord(AppendBlockRecord(nil, 1, rec(1)), 4, rec(4)), 9, rec(9))
	drop4 := func(seq uint64, b []byte) ([]byte, error) {
		if seq == 4 {
			return nil, nil
		}
		return b, nil
	}
	got, err := RewriteStored(1, block, drop4)
	if want := AppendBlockRecord(AppendBlockRecord(nil, 1, rec(1)), 9, rec(9)); err != nil || string(got) != string(want) {
		t.Errorf("block without c4: %q %v", got, err)
	}
	// A record alone stays alone, replaced or dropped.
	if got, err := RewriteStored(4, rec(4), func(uint64, []byte) ([]byte, error) { return rec(5), nil }); err != nil || string(got) != string(rec(5)) {
		t.Errorf("record alone: %q %v", got, err)
	}
	if got, err := RewriteStored(4, rec(4), drop4); err != nil || got != nil {
		t.Errorf("record alone dropped: %q %v", got, err)
	}
	if _, err := RewriteStored(1, block[:len(block)-3], drop4); !errors.Is(err, ErrCorrupt) {
		t.Errorf("block cut short: %v", err)
	}
}

func FuzzEachStored(f *testing.F) {
	b, _, _ := Encode(&Record{Seq: 1, PID: 1, Purpose: "analytics", Status: Granted})
	f.Add(AppendBlockRecord(AppendBlockRecord(nil, 1, b), 2, b))
	f.Add([]byte{recordBlockVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, v []byte) {
		EachStored(1, v, func(seq uint64, b []byte) error {
			Decode(b)
			return nil
		})
	})
}

// BenchmarkRecordCodec: a record as an ingest makes one from a Consent
// Updated event, in the binary form and in the JSON of schema 6 and
// before.
//
//	go test ./engine/consent/ -run '^$' -bench RecordCodec -benchmem
func BenchmarkRecordCodec(b *testing.B) {
	r := Record{Seq: 1234567, PID: 987654, Purpose: "marketing_email", Status: Granted, LegalBasis: "consent",
		Jurisdiction: "GDPR", Source: "banner", Policy: "v3", IPHash: HashIP([]byte("salt"), "203.0.113.7"),
		MessageID: "4f7c9a52-1b0e-4d1a-9c3e-2b8f6d5a7e10", DecidedAt: t0.UnixNano(), RecordedAt: t0.UnixNano(),
		Prev: Sum([]byte("previous")).String()}
	bin, _, _ := Encode(&r)
	js, _ := json.Marshal(&r)
	b.Logf("binary %d bytes, JSON %d bytes", len(bin), len(js))
	for _, form := range []struct {
		name   string
		stored []byte
		encode func() []byte
	}{
		{"binary", bin, func() []byte { b, _, _ := Encode(&r); return b }},
		{"json", js, func() []byte { b, _ := gojson.Marshal(&r); Sum(b); return b }},
	} {
		b.Run("encode/"+form.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				form.encode()
			}
		})
		b.Run("decode/"+form.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(form.stored); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
