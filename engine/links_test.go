package engine

import (
	"context"
	"testing"

	"github.com/loupe-cdp/loupe/store"
)

// storedLinks counts the links of every stored block, those in 'L' keys
// and those riding in event values, and the values of each kind.
func storedLinks(t *testing.T, e *Engine) (links, blocks, linkedValues int) {
	t.Helper()
	count := func(v []byte) {
		if err := forEachLink(v, func(_, _ []byte, _ linkRec) error { links++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	e.db.View(func(tx *store.Txn) error {
		tx.Iterate([]byte{store.PrefixLinks}, store.IterOptions{}, func(_, v []byte) error {
			blocks++
			count(v)
			return nil
		})
		return tx.Iterate([]byte{store.PrefixEvent}, store.IterOptions{}, func(_, v []byte) error {
			l, _, err := splitLinks(v)
			if err != nil {
				t.Fatal(err)
			}
			if l != nil {
				linkedValues++
				count(l)
			}
			return nil
		})
	})
	return links, blocks, linkedValues
}

func TestLinksRideInEventValues(t *testing.T) {
	// An ingest stores the links a unit made for a profile in the value of
	// the unit's events of that profile, no 'L' key. Unmerge regroups them
	// into 'L' blocks and rewrites the values that carried them, events
	// that stay included, so that no link is stored twice.
	e := openTest(t)
	// Three ingests, three values: the first two hold events that stay
	// with u1 when kiosk is detached, the third one that moves.
	for _, line := range []string{
		`{"type":"identify","messageId":"1","userId":"u1","anonymousId":"a1","timestamp":"2026-10-01T00:00:00Z","traits":{"email":"one@example.com"}}`,
		`{"type":"track","messageId":"2","userId":"u1","anonymousId":"kiosk","event":"Viewed","timestamp":"2026-10-02T00:00:00Z"}`,
		`{"type":"identify","messageId":"3","anonymousId":"kiosk","timestamp":"2026-10-03T00:00:00Z","traits":{"email":"two@example.com"}}`,
	} {
		ingestString(t, e, line+"\n")
	}
	links, blocks, linked := storedLinks(t, e)
	// 1: u1-a1, u1-one@; 2: u1-kiosk; 3: two@-kiosk.
	if links != 4 || blocks != 0 || linked != 3 {
		t.Fatalf("after ingest: %d links, %d 'L' blocks, %d values with links; want 4, 0, 3", links, blocks, linked)
	}
	plan, err := e.Erase(context.Background(), "user_id:u1", EraseOptions{DryRun: true})
	if err != nil || plan.Counts["links"] != 4 {
		t.Fatalf("erasure plan counts %d links, want 4: %v", plan.Counts["links"], err)
	}
	res, err := e.Unmerge(context.Background(), "anonymous_id:kiosk")
	if err != nil {
		t.Fatal(err)
	}
	links, blocks, linked = storedLinks(t, e)
	if res.CutLinks != 2 || links != 2 || blocks != 1 || linked != 0 {
		t.Fatalf("after unmerge: %d cut, %d links in %d 'L' blocks, %d values with links; want 2 cut, 2 in 1, 0",
			res.CutLinks, links, blocks, linked)
	}
	// New links of the regrouped profiles ride in event values again, and
	// why reads both kinds.
	ingestString(t, e, `{"type":"identify","messageId":"5","userId":"u1","anonymousId":"laptop","timestamp":"2026-10-05T00:00:00Z"}
`)
	if links, blocks, linked = storedLinks(t, e); links != 3 || blocks != 1 || linked != 1 {
		t.Fatalf("after a new link: %d links, %d 'L' blocks, %d values with links; want 3, 1, 1", links, blocks, linked)
	}
	r, err := e.Why(context.Background(), "email:one@example.com", "anonymous_id:laptop")
	if err != nil || !r.Connected || len(r.Path) != 2 {
		t.Fatalf("why across an 'L' block and an event value: %+v %v", r, err)
	}
}

func TestLinksWithoutEventsGetABlock(t *testing.T) {
	// A unit's links of a profile it has no events for (none today: a link
	// is made by an event of the profile it is stored under) are not lost:
	// they get an 'L' block of their own.
	e := openTest(t)
	u := newUnit(1)
	u.links[42] = testLinks()
	u.linkSeq = 9
	if err := e.commitUnit(u); err != nil {
		t.Fatal(err)
	}
	if links, blocks, linked := storedLinks(t, e); links != 2 || blocks != 1 || linked != 0 {
		t.Fatalf("%d links, %d 'L' blocks, %d values with links; want 2, 1, 0", links, blocks, linked)
	}
}
