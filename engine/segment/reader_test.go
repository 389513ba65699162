package segment

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

type got struct {
	line int
	data string
	err  error
}

func readAll(t *testing.T, in []byte) []got {
	t.Helper()
	r, err := NewReader(bytes.NewReader(in), "test.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var out []got
	for i := 0; ; i++ {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if i > 10000 {
			t.Fatal("too many records")
		}
		out = append(out, got{rec.Line, string(rec.Data), rec.Err})
	}
}

func lines(gs []got) []int {
	var ls []int
	for _, g := range gs {
		ls = append(ls, g.line)
	}
	return ls
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReaderNDJSON(t *testing.T) {
	in := "\xef\xbb\xbf" + trackMsg + "\r\n\r\n" + pageMsg + "\r\n   \n" + aliasMsg // no final newline
	gs := readAll(t, []byte(in))
	if !equalInts(lines(gs), []int{1, 3, 5}) {
		t.Fatalf("lines = %v", lines(gs))
	}
	for _, g := range gs {
		if g.err != nil || strings.HasSuffix(g.data, "\r") {
			t.Errorf("line %d: %v %q", g.line, g.err, g.data)
		}
		if _, err := Parse([]byte(g.data), testNow); err != nil {
			t.Errorf("line %d: %v", g.line, err)
		}
	}
}

func TestReaderBadLines(t *testing.T) {
	in := strings.Join([]string{
		aliasMsg,                          // 1 ok
		`{"type":"track","event":"x"`,     // 2 truncated: reported when line 3 opens a new object
		groupMsg,                          // 3 ok
		`{"type":"track","event":"unterm`, // 4 unterminated string
		`garbage`,                         // 5 not an object
		`{"type":"track"}`,                // 6 framed fine; Parse rejects it
		aliasMsg,                          // 7 ok
		`{"type":"page",`,                 // 8 truncated at end of input
	}, "\n")
	gs := readAll(t, []byte(in))
	if !equalInts(lines(gs), []int{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("lines = %v", lines(gs))
	}
	for i, wantErr := range []bool{false, true, false, true, true, false, false, true} {
		if (gs[i].err != nil) != wantErr {
			t.Errorf("line %d: err = %v", gs[i].line, gs[i].err)
		}
		if gs[i].err != nil && !errors.Is(gs[i].err, ErrMalformed) {
			t.Errorf("line %d: %v does not wrap ErrMalformed", gs[i].line, gs[i].err)
		}
	}
	if !strings.Contains(gs[1].err.Error(), "test.ndjson line 2") {
		t.Errorf("error lacks location: %v", gs[1].err)
	}
}

func TestReaderArray(t *testing.T) {
	in := "\n[\n  " + identifyMsg + ",\n  " + trackMsg + "\n  ,\n" + pageMsg + "]\n"
	gs := readAll(t, []byte(in))
	if !equalInts(lines(gs), []int{3, 18, 20}) {
		t.Fatalf("lines = %v", lines(gs))
	}
	for _, g := range gs {
		if _, err := Parse([]byte(g.data), testNow); err != nil || g.err != nil {
			t.Errorf("line %d: %v %v", g.line, err, g.err)
		}
	}
	// A missing comma is reported, the element after it is still read;
	// an unclosed array is reported at the end.
	gs = readAll(t, []byte(`[`+aliasMsg+"\n"+groupMsg+`,`+"\n"+`{"type":"page"`))
	if len(gs) != 4 || gs[0].err != nil || gs[1].err == nil || gs[2].err != nil || gs[3].err == nil {
		t.Fatalf("got %+v", gs)
	}
	if gs[2].line != 2 || gs[3].line != 3 {
		t.Errorf("lines = %v", lines(gs))
	}
	// Scalars are framed as elements (Parse rejects them); trailing garbage stops reading.
	gs = readAll(t, []byte(`[1, "x", {"a":"]"}] junk [`))
	if len(gs) != 4 || gs[0].data != "1" || gs[1].data != `"x"` || gs[2].data != `{"a":"]"}` || gs[3].err == nil {
		t.Fatalf("got %+v", gs)
	}
	if gs := readAll(t, []byte(" [ ] ")); len(gs) != 0 {
		t.Fatalf("empty array: %+v", gs)
	}
}

// analytics-go sends batches like this (pretty-printed here).
const batchEnvelope = `{
  "batch": [
    {
      "type": "identify",
      "messageId": "a1",
      "userId": "019mr8mf4r",
      "traits": {"email": "jake@example.com", "name": "Jake"},
      "timestamp": "2026-05-01T10:00:00.000Z",
      "context": {"ip": "1.2.3.4"}
    },
    {"type": "track", "messageId": "a2", "userId": "019mr8mf4r", "event": "Signed Up", "properties": {"plan": "Enterprise"}, "timestamp": "2026-05-01T10:00:01.000Z", "sentAt": "2026-05-01T10:00:09Z", "context": {"library": {"name": "custom", "version": "0"}}},
    {"type": "page", "messageId": "a3", "userId": "019mr8mf4r", "name": "Docs", "timestamp": "2026-05-01T10:00:02.000Z"}
  ],
  "context": {"library": {"name": "analytics-go", "version": "3.0.0"}, "ip": "9.9.9.9"},
  "messageId": "batch-1",
  "sentAt": "2026-05-01T10:00:05.000Z"
}
`

func TestReaderBatchEnvelope(t *testing.T) {
	check := func(gs []got, wantLines []int) {
		t.Helper()
		if !equalInts(lines(gs), wantLines) {
			t.Fatalf("lines = %v, want %v", lines(gs), wantLines)
		}
		var evs []Event
		for _, g := range gs {
			ev, err := Parse([]byte(g.data), testNow)
			if err != nil || g.err != nil {
				t.Fatalf("line %d: %v %v: %s", g.line, err, g.err, g.data)
			}
			evs = append(evs, ev)
		}
		lib := func(ev Event) any { return ev.WholeContext()["library"].(map[string]any)["name"] }
		sent := time.Date(2026, 5, 1, 10, 0, 5, 0, time.UTC)
		if !evs[0].SentAt.Equal(sent) || lib(evs[0]) != "analytics-go" || evs[0].IPAddress() != "1.2.3.4" {
			t.Errorf("first message not merged: %s", evs[0].Raw)
		}
		if !evs[1].SentAt.Equal(sent.Add(4*time.Second)) || lib(evs[1]) != "custom" || evs[1].IPAddress() != "9.9.9.9" {
			t.Errorf("second message: own sentAt and library must win: %s", evs[1].Raw)
		}
		if lib(evs[2]) != "analytics-go" || !evs[2].SentAt.Equal(sent) {
			t.Errorf("third message: context must be added: %s", evs[2].Raw)
		}
	}
	check(readAll(t, []byte(batchEnvelope)), []int{3, 11, 12})
	var one bytes.Buffer
	if err := compactJSON(&one, batchEnvelope); err != nil {
		t.Fatal(err)
	}
	ndjson := aliasMsg + "\n" + one.String() + "\n" + aliasMsg + "\n"
	gs := readAll(t, []byte(ndjson))
	if len(gs) != 5 {
		t.Fatalf("got %d records", len(gs))
	}
	check(gs[1:4], []int{2, 2, 2})
}

func TestReaderPrettyObjects(t *testing.T) {
	gs := readAll(t, []byte(identifyMsg+"\n"+identifyMsg+"\n"))
	if !equalInts(lines(gs), []int{1, 16}) || gs[0].err != nil || gs[1].err != nil {
		t.Fatalf("got %+v", gs)
	}
}

func TestReaderGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = io.WriteString(zw, "\xef\xbb\xbf"+trackMsg+"\n"+pageMsg+"\n")
	_ = zw.Close()
	gs := readAll(t, buf.Bytes())
	if !equalInts(lines(gs), []int{1, 2}) || gs[0].data != trackMsg {
		t.Fatalf("got %+v", gs)
	}
	// A corrupt stream is an I/O error from Next.
	bad := append([]byte(nil), buf.Bytes()...)
	bad[len(bad)-5] ^= 0xff
	r, err := NewReader(bytes.NewReader(bad), "bad.gz")
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := r.Next()
		if err == io.EOF {
			t.Fatal("corrupt gzip not reported")
		}
		if err != nil {
			break
		}
	}
	if _, err := NewReader(bytes.NewReader([]byte{0x1f, 0x8b, 0}), "trunc.gz"); err == nil {
		t.Error("truncated gzip header accepted")
	}
}

func TestReaderLongLines(t *testing.T) {
	big := `{"type":"track","event":"Big","userId":"u","properties":{"blob":"` + strings.Repeat("x", 2<<20) + `"}}`
	in := []byte(aliasMsg + "\n" + big + "\n" + aliasMsg + "\n")
	gs := readAll(t, in)
	if len(gs) != 3 || gs[1].data != big || gs[2].line != 3 {
		t.Fatalf("long line: %d records", len(gs))
	}
	r, _ := NewReader(bytes.NewReader(in), "big.ndjson")
	r.max = 1 << 20 // pretend the limit is 1 MiB
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		recs = append(recs, rec)
	}
	if len(recs) != 3 || !errors.Is(recs[1].Err, ErrTooLarge) || recs[1].Line != 2 || recs[2].Err != nil || recs[2].Line != 3 {
		t.Fatalf("over the limit: %+v", recs)
	}
	// The same in an array.
	r, _ = NewReader(strings.NewReader("["+aliasMsg+",\n"+big+",\n"+aliasMsg+"]"), "big.json")
	r.max = 1 << 20
	recs = recs[:0]
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		recs = append(recs, rec)
	}
	if len(recs) != 3 || !errors.Is(recs[1].Err, ErrTooLarge) || recs[2].Err != nil || recs[2].Line != 3 {
		t.Fatalf("array over the limit: %+v", recs)
	}
}

func compactJSON(dst *bytes.Buffer, s string) error {
	dst.Write(compact([]byte(s)))
	return nil
}
