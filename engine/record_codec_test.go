package engine

import (
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

func TestProfileCodecRoundTrip(t *testing.T) {
	p := sampleRecord()
	b, err := encodeProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeProfile(42, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
	}
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
	p := sampleRecord()
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
