package engine

import (
	"context"
	"testing"
)

func TestQuarantine(t *testing.T) {
	e := openTest(t)
	ctx := context.Background()
	if err := e.Quarantine(ctx, "crm", "id=7", "column updated_at: not a time", []byte(`{"id":7}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.Quarantine(ctx, "crm2", "page 3", "malformed JSON", nil); err != nil {
		t.Fatal(err)
	}
	got, err := e.Quarantined(ctx, "crm", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Source != "crm" || got[0].Key != "id=7" || string(got[0].Data) != `{"id":7}` || got[0].Time != fixedNow {
		t.Fatalf("quarantined: %+v", got)
	}
	all, _ := e.Quarantined(ctx, "", 0)
	if len(all) != 2 {
		t.Fatalf("all sources: %+v", all)
	}
}
