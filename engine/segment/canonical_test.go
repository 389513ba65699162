package segment

import (
	"bytes"
	"crypto/sha256"
	stdjson "encoding/json"
	"os"
	"slices"
	"strconv"
	"testing"
)

// decodedCanonical is the canonical form as derived messageIds were first
// computed, by decoding the message with encoding/json: the reference
// appendCanonical must match byte for byte, or a message ingested again
// would get a new id and be stored twice.
func decodedCanonical(raw []byte, drop string) []byte {
	dec := stdjson.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return strconv.AppendQuote(nil, string(raw))
	}
	if m, ok := v.(map[string]any); ok && drop != "" {
		delete(m, drop)
	}
	return appendDecoded(nil, v)
}

func appendDecoded(dst []byte, v any) []byte {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendQuote(dst, k)
			dst = append(dst, ':')
			dst = appendDecoded(dst, v[k])
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendDecoded(dst, e)
		}
		return append(dst, ']')
	case string:
		return strconv.AppendQuote(dst, v)
	case stdjson.Number:
		return append(dst, v...)
	case bool:
		return strconv.AppendBool(dst, v)
	default: // nil
		return append(dst, "null"...)
	}
}

// canonicalOf is what deriveMessageID hashes.
func canonicalOf(raw []byte, drop string) []byte {
	c, ok := appendCanonical(nil, raw, drop)
	if !ok {
		return strconv.AppendQuote(nil, string(raw))
	}
	return c
}

var canonicalCases = []string{
	`{"type":"track","event":"Order Completed","userId":"u1","properties":{"revenue":12.50,"items":[{"sku":"a","qty":1},{"qty":2,"sku":"b"}]}}`,
	`{"b":1,"a":2,"messageId":"m1","c":{"messageId":"kept inside","a":null}}`,
	`{"a":1,"a":{"x":[1,2]},"b":true,"a":false}`, // a repeated key keeps its last value
	`{"k":"tab\there","q":"quote\" and \\ backslash","u":"\u00e9\u4e2d\ud83d\ude00","lone":"\ud800x","ctl":"\u0001\u007f"}`,
	"{\"raw\":\"caf\xc3\xa9 \xe2\x82\xac\",\"bad\":\"\xff\xfe\",\"\xffkey\":1}",
	`{"esc\u0061ped":1,"escaped":2,"messageI\u0064":"escaped messageId is still messageId"}`,
	`{ "spaced" : [ 1 , 2.50 , -0 , 1e5 , 1E-3 , 12345678901234567890123 ] , "t" : true , "n" : null }`,
	`{"nested":{"z":{"y":{"x":[[],{},[{}],""]}}},"empty":{},"arr":[]}`,
	`{"ünïcode":"ключ","日本":"語","emoji😀":"✓","a":"<&>"}`,
	`[1,{"b":2,"a":1},"x"]`,
	`"just a string"`,
	`42`,
	`{"unterminated":`,
	`{"num":007}`,
	``,
}

func TestCanonicalMatchesDecoded(t *testing.T) {
	for _, c := range canonicalCases {
		for _, drop := range []string{"", "messageId"} {
			got, want := canonicalOf([]byte(c), drop), decodedCanonical([]byte(c), drop)
			if !bytes.Equal(got, want) {
				t.Errorf("%q drop %q:\n got %s\nwant %s", c, drop, got, want)
			}
		}
	}
	for _, name := range []string{"segment-basic.ndjson", "segment-array.json", "segment-batch.json", "segment-bad.ndjson"} {
		for _, rec := range readFixture(t, name) {
			if rec.Err != nil {
				continue
			}
			if got, want := canonicalOf(rec.Data, "messageId"), decodedCanonical(rec.Data, "messageId"); !bytes.Equal(got, want) {
				t.Errorf("%s:%d:\n got %s\nwant %s", name, rec.Line, got, want)
			}
		}
	}
}

func TestDerivedMessageIDUnchanged(t *testing.T) {
	// Derived ids are stored, so they never change: this one was computed
	// when the canonical form was still made by decoding into maps. The
	// two messages differ only in member order, escapes, white space and
	// an empty messageId.
	const want = "loupe-e26074c084a086cc76af7e35e4b68153"
	for _, raw := range []string{
		`{"type":"track","event":"Viewed","anonymousId":"a1","timestamp":"2026-01-02T03:04:05Z","properties":{"b":[1,2.50,{"y":null,"x":true}],"a":"\u00e9\t"}}`,
		`{"anonymousId":"a1","event":"Viewed","timestamp":"2026-01-02T03:04:05Z","type":"track","messageId":"","properties":{"a":"é\t","b":[1,2.50,{"x":true,"y":null}]}}`,
	} {
		if got := deriveMessageID([]byte(raw)); got != want {
			t.Errorf("%s: derived %s, want %s", raw, got, want)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, c := range canonicalCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Parse hands deriveMessageID one valid value; on anything else
		// the decoder, which stops after the first value, is no reference.
		if !stdjson.Valid(raw) {
			return
		}
		if got, want := canonicalOf(raw, "messageId"), decodedCanonical(raw, "messageId"); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", raw, got, want)
		}
	})
}

func BenchmarkDeriveMessageID(b *testing.B) {
	raw, err := os.ReadFile("testdata/track-900.json")
	if err != nil {
		b.Fatal(err)
	}
	raw = compact(raw) // as Parse hands it over
	b.Run("bytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			deriveMessageID(raw)
		}
	})
	b.Run("decoded", func(b *testing.B) { // the form it replaced
		b.ReportAllocs()
		for b.Loop() {
			sha256.Sum256(decodedCanonical(raw, "messageId"))
		}
	})
}
