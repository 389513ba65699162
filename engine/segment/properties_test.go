package segment

import (
	"reflect"
	"testing"
	"time"
)

func TestPropertyReadsOneMemberAsAMapWould(t *testing.T) {
	ev, err := Parse([]byte(`{"type":"track","event":"Order Completed","userId":"u1","timestamp":"2026-01-01T00:00:00Z",
		"properties": { "products": [{"revenue": 1}], "reven\u0075e": "ignored, repeated below",
		"nested": {"revenue": 2}, "total": null, "revenue" : 25.5 , "qty": "3"}}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	all := ev.PropertyMap()
	for _, name := range []string{"revenue", "products", "nested", "total", "qty", "absent"} {
		got, ok := ev.Property(name)
		want, wantOK := all[name]
		if ok != wantOK || !reflect.DeepEqual(got, want) {
			t.Errorf("Property(%q) = %#v, %v; the map holds %#v, %v", name, got, ok, want, wantOK)
		}
	}
	if v, _ := ev.Property("revenue"); v != 25.5 {
		t.Errorf("revenue %#v: the last of a repeated name wins", v)
	}
}

func TestPropertiesAbsentNullOrNotAnObject(t *testing.T) {
	for _, props := range []string{``, `,"properties":null`} {
		ev, err := Parse([]byte(`{"type":"track","event":"e","userId":"u"`+props+`}`), time.Now())
		if err != nil {
			t.Fatalf("%q: %v", props, err)
		}
		if m := ev.PropertyMap(); m != nil {
			t.Errorf("%q: map %v", props, m)
		}
		if _, ok := ev.Property("revenue"); ok {
			t.Errorf("%q: a property where there is none", props)
		}
	}
	for _, props := range []string{`[1]`, `1`, `true`, `"x"`} {
		_, err := Parse([]byte(`{"type":"track","event":"e","userId":"u","properties":`+props+`}`), time.Now())
		if ve, ok := err.(*ValidationError); !ok || ve.Field != "properties" {
			t.Errorf("properties %s: %v", props, err)
		}
	}
}
