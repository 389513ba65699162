package engine

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

func sampleRecord() *profileRec {
	return &profileRec{
		PID:     42,
		Merged:  []uint64{7, 9},
		IDs:     []identRec{{T: "email", V: "ann@example.com", F: -5, L: 1e18}, {T: "user_id", V: "u\x00x", F: 1, L: 2}},
		Blocked: []blockedRec{{T: "user_id", V: "null", N: 3}},
		Traits: map[string]*traitRec{
			"plan":  {traitVal: traitVal{V: "pro", T: 100, M: "m1"}, H: []traitVal{{V: "free", T: 50, M: "m0"}}},
			"age":   {traitVal: traitVal{V: 41.5, T: 1}},
			"vip":   {traitVal: traitVal{V: true, T: 1, S: "rectification", R: "ticket 12"}},
			"off":   {traitVal: traitVal{V: false}},
			"none":  {traitVal: traitVal{V: nil}},
			"tags":  {traitVal: traitVal{V: []any{"a", 1.0}}},
			"addr":  {traitVal: traitVal{V: map[string]any{"city": "Berlin"}}},
			"empty": {traitVal: traitVal{V: ""}},
		},
		Events: map[string]*eventRec{
			"Order Completed": {N: 3, F: 10, L: 30, S: map[string]float64{"revenue": 12.5}, R: []int64{1, 5, 5}, RV: map[string][]float64{"revenue": {0, 2.5, 10}}},
			"Page Viewed":     {N: 1, F: 7, L: 7, R: []int64{-3}},
		},
		Count: 4, First: 7, Last: 30,
	}
}

// roundTrip encodes p, checks that it decodes to p again, and returns
// the encoding.
func roundTrip(t *testing.T, p *profileRec) []byte {
	t.Helper()
	b, err := encodeProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeProfile(p.PID, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
	}
	return b
}

func TestProfileCodecRoundTrip(t *testing.T) {
	roundTrip(t, sampleRecord())
}

// profileV2Hex is sampleRecord as version 2 wrote it, provenance inline.
const profileV2Hex = "02040e3c0207090205656d61696c0f616e6e406578616d706c652e636f6d0980" +
	"80a0f6f4acdbe01b07757365725f69640375007802040107757365725f696404" +
	"6e756c6c0308036f6666010000000000046e6f6e650000000000000474616773" +
	"05075b2261222c315d0000000000046164647205117b2263697479223a224265" +
	"726c696e227d000000000005656d7074790400000000000004706c616e040370" +
	"726fc801026d3100000104046672656564026d30000003616765030000000000" +
	"c044400200000000037669700202000d72656374696669636174696f6e097469" +
	"636b657420313200020f4f7264657220436f6d706c6574656403143c01077265" +
	"76656e75650000000000002940030208000107726576656e7565000000000000" +
	"0000000000000000044000000000000024400b5061676520566965776564010e" +
	"0e00010500"

func TestProfileCodecReadsVersion2(t *testing.T) {
	b, err := hex.DecodeString(profileV2Hex)
	if err != nil || b[0] != profileCodecV2 {
		t.Fatalf("fixture: %v, version %d", err, b[0])
	}
	got, err := decodeProfile(42, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := sampleRecord(); !reflect.DeepEqual(got, want) {
		t.Fatalf("version 2 record:\n got %+v\nwant %+v", got, want)
	}
}

// identifyProfile is a profile as one identify call leaves it: a dozen
// traits set by one message at one time.
func identifyProfile() *profileRec {
	p := &profileRec{PID: 7, Count: 1, First: 1e18, Last: 1e18, Traits: map[string]*traitRec{}}
	for i := range 12 {
		p.Traits[fmt.Sprintf("trait_%d", i)] = &traitRec{traitVal: traitVal{V: fmt.Sprint("value ", i), T: 1e18, M: "ef78348d-262c-4c09-ad47-ff0f9883c170"}}
	}
	p.Traits["plan"] = &traitRec{traitVal: traitVal{V: "pro", T: 1e18, M: "ef78348d-262c-4c09-ad47-ff0f9883c170"},
		H: []traitVal{{V: "free", T: 9e17, M: "0c51e1b3-c24f-4ffd-8f21-50aedd3d5853"}}}
	return p
}

func TestProfileCodecWritesProvenanceOnce(t *testing.T) {
	b := roundTrip(t, identifyProfile())
	for _, m := range []string{"ef78348d-262c-4c09-ad47-ff0f9883c170", "0c51e1b3-c24f-4ffd-8f21-50aedd3d5853"} {
		if n := bytes.Count(b, []byte(m)); n != 1 {
			t.Errorf("message id %s written %d times, want once", m, n)
		}
	}
}

func TestProfileCodecManyProvenances(t *testing.T) {
	// More distinct provenances than provTable scans: the map takes over.
	p := &profileRec{PID: 3, Traits: map[string]*traitRec{}}
	for i := range 3 * provScanMax {
		tr := &traitRec{traitVal: traitVal{V: float64(i), T: int64(i), M: fmt.Sprint("m", i%(2*provScanMax)), S: "rectification", R: fmt.Sprint("r", i%3)}}
		for h := range 3 {
			tr.H = append(tr.H, traitVal{V: "old", T: int64(-h), M: fmt.Sprint("h", h)})
		}
		p.Traits[fmt.Sprint("t", i)] = tr
	}
	roundTrip(t, p)
}

func TestProfileCodecReadsJSONRecords(t *testing.T) {
	p := sampleRecord()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeProfile(42, b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Traits["plan"].V != "pro" || got.Events["Order Completed"].RV["revenue"][2] != 10 {
		t.Fatalf("json record: %+v", got)
	}
}

func TestProfileCodecRejectsCorruption(t *testing.T) {
	b, _ := encodeProfile(sampleRecord())
	for cut := 1; cut < len(b); cut++ {
		if _, err := decodeProfile(1, b[:cut]); err == nil {
			t.Fatalf("truncated at %d decoded without error", cut)
		}
	}
	huge := append([]byte{profileCodecVersion, 1, 2, 2}, 0xff, 0xff, 0xff, 0xff, 0x0f)
	if _, err := decodeProfile(1, huge); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("huge count: %v", err)
	}
	// A trait naming a provenance past the end of the table: count 1,
	// first 2, last 2, no merged ids, identities or blocked values, one
	// provenance, one trait "a" = null from provenance 1.
	badProv := []byte{profileCodecVersion, 1, 4, 4, 0, 0, 0, 1, 2, 1, 'm', 0, 0, 1, 1, 'a', 0, 1, 0, 0}
	if _, err := decodeProfile(1, badProv); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("provenance out of range: %v", err)
	}
	badProv[len(badProv)-3] = 0 // provenance 0 exists: the same bytes decode
	if _, err := decodeProfile(1, badProv); err != nil {
		t.Fatalf("provenance in range: %v", err)
	}
}

func FuzzProfileCodec(f *testing.F) {
	b, _ := encodeProfile(sampleRecord())
	f.Add(b)
	f.Add([]byte{profileCodecVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeProfile(1, data)
		if err != nil {
			return
		}
		if _, err := encodeProfile(p); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkProfileCodec(b *testing.B) {
	b.Run("sample", func(b *testing.B) { benchmarkProfileCodec(b, sampleRecord()) })
	b.Run("identify", func(b *testing.B) { benchmarkProfileCodec(b, identifyProfile()) })
}

func benchmarkProfileCodec(b *testing.B, p *profileRec) {
	enc, _ := encodeProfile(p)
	js, _ := json.Marshal(p)
	b.Run("encode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeProfile(p)
		}
	})
	b.Run("encode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(p)
		}
	})
	b.Run("decode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decodeProfile(1, enc)
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decodeProfile(1, js)
		}
	})
	b.ReportMetric(float64(len(enc)), "bytes-binary")
	b.ReportMetric(float64(len(js)), "bytes-json")
}
