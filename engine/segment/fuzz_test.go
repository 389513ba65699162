package segment

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
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

// FuzzParseFastMatchesSlow checks Parse's one-walk fast path against the
// slow path it replaces (validJSON, then a goccy/go-json decode of the
// whole message, then compact): on every input both accept the same
// events, equal field by field, or reject with the same error.
func FuzzParseFastMatchesSlow(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	for _, s := range parseFastSeeds {
		f.Add([]byte(s))
	}
	for _, name := range []string{"../../testdata/segment-basic.ndjson", "../../testdata/segment-bad.ndjson", "testdata/track-900.json"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, fastErr := parse(data, testNow, true)
		slow, slowErr := parse(data, testNow, false)
		if fmt.Sprint(fastErr) != fmt.Sprint(slowErr) {
			t.Fatalf("%q: fast path error %v, slow path %v", data, fastErr, slowErr)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast path %#v\nslow path %#v", data, fast, slow)
		}
	})
}

// parseFastSeeds are the cases the fast path hands to the slow one, or
// decides itself where the two could part.
var parseFastSeeds = []string{
	`{"type":"track","event":"A","userId":"u","type":"page"}`,                               // repeated member
	`{"TYPE":"Track","Event":"A","USERID":"u","Context":{"IP":"1.2.3.4","Traits":{"a":1}}}`, // case
	`{"typ\u0065":"track","event":"A","userId":"u"}`,                                        // escaped name
	`{"ſype":"track","event":"A","userId":"u"}`,                                             // non-ASCII name
	`{"type":"track","event":"\u00e9\n","userId":"u\"1"}`,                                   // escapes in values
	"{\"type\":\"track\",\"event\":\"\xff\",\"userId\":\"u\"}",                              // invalid UTF-8
	`{"type":"track","event":"é","userId":"u"}`,
	`{"type":5,"event":"A","userId":"u"}`,
	`{"type":"identify","userId":"u","traits":[1]}`,
	`{"type":"identify","userId":"u","traits":null,"context":null}`,
	`{"type":"identify","userId":"u","context":"x"}`,
	`{"type":"identify","userId":"u","context":{"ip":5,"gpc":true,"device":{"id":"d"},"consent":{"categoryPreferences":{"a":false}},"ip":null}}`,
	`{"type":"identify","userId":"u","context":{"gpc":false,"device":null,"library":{"name":"x"}}}`,
	`{"type":"identify","userId":"u","context":{"traits":{"email":"A@B.c"},"ip":"1.2.3.4\u0000"}}`,
	` { "type" : "track" , "event" : "A" , "userId" : 1e3 , "properties" : { "revenue" : 9.5 } } `,
	`{"type":"track","event":"A","userId":"u","properties":[1]}`,
	`{"type":"track","event":"A","userId":"u","timestamp":null,"sentAt":"2024-01-02T03:04:05Z"}`,
	`{"type":"track","event":"A","userId":"u","x":[1,2,{"y":"z"}],"context":{"page":{"url":"h"}}}`,
	`{"type":"track","event":"A","userId":"u",}`,
	`{"type":"track","event":"A","userId":"u"} x`,
	`{"type":"track","event":"A","userId":"u","context":{"ip":"1",}}`,
	`{"type":"track","event":"A","userId":"u","context":{"ip":"1"}`,
	`{"type":"track","event":"A","userId":"u","traits":{"a":007}}`,
	`{"type":"track","event":"A","anonymousId":true}`,
	`{"messageId":"m","type":"alias","previousId":"p","userId":"u","context":{}}`,
	`{"type":"identify","userId":"u","traits":{"a":[],"b":{},"c":[1,"x",null,true,{"d":-0.5e+3}],"e\u00e9":"\n","e":2,"e":[ ],"big":12345678901234567890}}`,
	`{"type":"identify","userId":"u","traits":{"n":1e400}}`,
	`{"type":"identify","userId":"u","context":{"device":{"n":-1e-400,"s":"\ud800"},"traits":[{ }]}}`,
	`{"type":"identify","userId":"u","context":{"device":{"i\u0064":"escaped","type":"ios"}}}`,
	`{"type":"identify","userId":"u","context":{"device":{"id":"a","id":"b"}}}`,
	`{"type":"identify","userId":"u","context":{"device":{"ID":"upper","Id":1}}}`,
	`{"type":"identify","userId":"u","context":{"device":["id","d"],"Device":{"id":"second"}}}`,
	`{"type":"identify","userId":"u","context":{"device":{ "type" : "ios" , "id" : { "x" : [1] } }}}`,
	`{"type":"identify","userId":"u","context":{"device":{"id":null,"model":"iPhone7,2"}}}`,
	`{"type":"identify","userId":"u","context":{"device":"d1"}}`,
	`{"type":"identify","userId":"u","context":{"device":{"x":1e700,"id":"d"}}}`,
	`{"type":"identify","userId":"u","context":{"device":{"id":1e700}}}`,
	`{"type":"page","userId":"u","context":{"consent":{ "categoryPreferences" : {"A\u0064s":true} } }}`,
	`{"type":"page","userId":"u","context":{"consent":{"categoryPreferences":{"Ads":1e700}},"Consent":null}}`,
	`{"type":"page","userId":"u","context":{"consent":"granted"}}`,
}
