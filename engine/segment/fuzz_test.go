package segment

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func fuzzSeeds() [][]byte {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = io.WriteString(zw, trackMsg+"\n"+pageMsg)
	_ = zw.Close()
	return [][]byte{
		[]byte(identifyMsg), []byte(pageMsg), []byte(screenMsg), []byte(groupMsg),
		[]byte(aliasMsg), []byte(trackMsg), []byte(batchEnvelope),
		[]byte("[" + aliasMsg + "," + groupMsg + "]"),
		[]byte("\xef\xbb\xbf" + aliasMsg + "\r\n{\"type\":\n"),
		[]byte(`{"batch":[{"type":"page","userId":1,"context":{}},{}],"context":{"a":1},"sentAt":"x"}`),
		[]byte(`[1,,}{"a":"\"]"}]`), []byte(`{"userId":1e400,"type":"alias"}`),
		gz.Bytes(), {}, []byte("{"), []byte(`"\`),
	}
}

// FuzzReader checks that no input makes the Reader panic or loop, and that
// every framed record can be handed to Parse without a panic.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		for n := 0; ; n++ {
			if n > 2*len(data)+10 {
				t.Fatalf("more records than bytes: reader loops")
			}
			rec, err := r.Next()
			if err != nil {
				return
			}
			if rec.Err == nil {
				if rec.Line < 1 {
					t.Fatalf("line %d", rec.Line)
				}
				_, _ = Parse(rec.Data, testNow)
			}
		}
	})
}

// FuzzParse checks that Parse never panics and that what it accepts
// round-trips: Raw is valid JSON that parses to the same message id.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Parse(data, testNow)
		if err != nil {
			return
		}
		if !json.Valid(ev.Raw) {
			t.Fatalf("accepted %q but Raw %q is not valid JSON", data, ev.Raw)
		}
		ev2, err := Parse(ev.Raw, testNow)
		if err != nil || ev2.MessageID != ev.MessageID {
			t.Fatalf("Raw does not round-trip: %v %q %q", err, ev.MessageID, ev2.MessageID)
		}
	})
}

// FuzzValidJSON checks validJSON against encoding/json.Valid, which is the
// reference for what Loupe accepts as JSON.
func FuzzValidJSON(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	for _, s := range []string{
		`0`, `-0.5e+3`, `007`, `1.`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `"\u00e9\n"`, `"\x"`, "\"\x01\"",
		`[[[]]]`, `{"a":{"b":[true,false,null]}}`, `tru`, `nul`, ` {} `, `{}{}`, "\"\xff\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json.Valid = %v", data, got, want)
		}
	})
}

// TestValidJSONLongStrings checks strings of the largest accepted message
// size made of escapes and escaped quotes, with and without a control
// byte. BenchmarkValidJSONEscapes measures their cost, which a scan that
// went back over the rest of the string at each escape made quadratic
// (33 s for 1 MB of \n escapes; 3.6 ms now).
func TestValidJSONLongStrings(t *testing.T) {
	for _, esc := range []string{`\n`, `\"`, `\u00e9`} {
		b := []byte(`"` + strings.Repeat(esc, (1<<20)/len(esc)) + `"`)
		if !validJSON(b) {
			t.Errorf("%s x %d rejected", esc, (1<<20)/len(esc))
		}
		b[1] = 0x01
		if validJSON(b) {
			t.Errorf("%s x %d with a control byte accepted", esc, (1<<20)/len(esc))
		}
	}
}

func BenchmarkValidJSONEscapes(b *testing.B) {
	data := []byte(`"` + strings.Repeat(`\n`, 1<<19) + `"`)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if !validJSON(data) {
			b.Fatal("rejected")
		}
	}
}

func TestValidJSONDepth(t *testing.T) {
	for _, n := range []int{maxNesting, maxNesting + 1} {
		b := []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Errorf("depth %d: validJSON %v, encoding/json %v", n, got, want)
		}
	}
}
