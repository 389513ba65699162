package segment

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func readFixture(t *testing.T, name string) []Record {
	t.Helper()
	f, err := os.Open("../../testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f, name)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
}

func parseAll(t *testing.T, recs []Record) []Event {
	t.Helper()
	var evs []Event
	for _, rec := range recs {
		if rec.Err != nil {
			t.Fatalf("line %d: %v", rec.Line, rec.Err)
		}
		ev, err := Parse(rec.Data, testNow)
		if err != nil {
			t.Fatalf("line %d: %v", rec.Line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestFixtureBasic(t *testing.T) {
	evs := parseAll(t, readFixture(t, "segment-basic.ndjson"))
	gz := parseAll(t, readFixture(t, "segment-basic.ndjson.gz"))
	if len(evs) != 31 || len(gz) != 31 {
		t.Fatalf("got %d and %d events", len(evs), len(gz))
	}
	derived := 0
	for i := range evs {
		if evs[i].MessageID != gz[i].MessageID || string(evs[i].Raw) != string(gz[i].Raw) {
			t.Errorf("event %d differs between plain and gzip", i)
		}
		if strings.HasPrefix(evs[i].MessageID, DerivedIDPrefix) {
			derived++
		}
	}
	if derived != 1 {
		t.Errorf("derived ids: %d", derived)
	}
	last := evs[30]
	if last.Type != TypeTrack || last.UserID != "1234567890123" {
		t.Errorf("numeric userId: %+v", last)
	}
	if evs[2].Email() != " Ann.Lee@Example.COM " || evs[14].Timestamp.After(evs[12].Timestamp) {
		t.Error("story details changed")
	}
}

func TestFixtureArrayAndBatch(t *testing.T) {
	recs := readFixture(t, "segment-array.json")
	evs := parseAll(t, recs)
	if len(evs) != 6 || recs[0].Line != 2 {
		t.Fatalf("array: %d events, first at line %d", len(evs), recs[0].Line)
	}
	evs = parseAll(t, readFixture(t, "segment-batch.json"))
	if len(evs) != 3 {
		t.Fatalf("batch: %d events", len(evs))
	}
	envSent := time.Date(2026, 10, 1, 10, 6, 30, 0, time.UTC)
	lib := func(ev Event) any { return ev.WholeContext()["library"].(map[string]any)["name"] }
	if !evs[0].SentAt.Equal(envSent) || evs[1].SentAt.Equal(envSent) || !evs[2].SentAt.Equal(envSent) {
		t.Error("sentAt defaults")
	}
	if lib(evs[0]) != "analytics-go" || lib(evs[1]) != "analytics-go" || lib(evs[2]) != "custom" {
		t.Error("context.library defaults")
	}
	for _, ev := range evs {
		if ev.Context.IP == nil {
			t.Errorf("no context.ip: %s", ev.Raw)
		}
	}
	if evs[0].IPAddress() != "198.51.100.7" {
		t.Error("message's own context.ip must win")
	}
}

func TestFixtureBad(t *testing.T) {
	recs := readFixture(t, "segment-bad.ndjson")
	want := []struct {
		line  int
		field string // "" = ok, "json" = invalid JSON
	}{{1, ""}, {2, "json"}, {3, ""}, {4, "type"}, {5, "event"}, {6, "userId"}, {7, "timestamp"}, {8, ""}}
	if len(recs) != len(want) {
		t.Fatalf("%d records", len(recs))
	}
	for i, w := range want {
		rec := recs[i]
		if rec.Line != w.line {
			t.Errorf("record %d: line %d, want %d", i, rec.Line, w.line)
		}
		if rec.Err != nil {
			t.Errorf("line %d: framing error %v", rec.Line, rec.Err)
			continue
		}
		_, err := Parse(rec.Data, testNow)
		var ve *ValidationError
		switch {
		case w.field == "" && err != nil:
			t.Errorf("line %d: %v", rec.Line, err)
		case w.field == "json" && (!errors.As(err, &ve) || ve.Field != "" || !strings.Contains(ve.Reason, "invalid JSON")):
			t.Errorf("line %d: %v, want invalid JSON", rec.Line, err)
		case w.field != "" && w.field != "json" && (!errors.As(err, &ve) || ve.Field != w.field):
			t.Errorf("line %d: %v, want field %q", rec.Line, err, w.field)
		}
	}
}
