package segment

import (
	"reflect"
	"testing"
	"time"
)

func TestPropertyValuesReadMembersAsAMapWould(t *testing.T) {
	ev, err := Parse([]byte(`{"type":"track","event":"Order Completed","userId":"u1","timestamp":"2026-01-01T00:00:00Z",
		"properties": { "products": [{"revenue": 1}], "reven\u0075e": "ignored, repeated below",
		"nested": {"revenue": 2}, "total": null, "revenue" : 25.5 , "qty": "3"}}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	all := ev.PropertyMap()
	names := []string{"revenue", "products", "nested", "total", "qty", "absent"}
	got := ev.PropertyValues(names)
	for i, name := range names {
		if !reflect.DeepEqual(got[i], all[name]) {
			t.Errorf("PropertyValues %q = %#v; the map holds %#v", name, got[i], all[name])
		}
	}
	if got[0] != 25.5 {
		t.Errorf("revenue %#v: the last of a repeated name wins", got[0])
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
		if v := ev.PropertyValues([]string{"revenue"}); v != nil {
			t.Errorf("%q: properties %v where there are none", props, v)
		}
	}
	for _, props := range []string{`[1]`, `1`, `true`, `"x"`} {
		_, err := Parse([]byte(`{"type":"track","event":"e","userId":"u","properties":`+props+`}`), time.Now())
		if ve, ok := err.(*ValidationError); !ok || ve.Field != "properties" {
			t.Errorf("properties %s: %v", props, err)
		}
	}
}
