package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgTest connects to LOUPE_TEST_POSTGRES and creates a unique schema that is
// dropped after the test.
func pgTest(t testing.TB) (dsn, schema string, conn *pgx.Conn) {
	t.Helper()
	dsn = os.Getenv("LOUPE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("LOUPE_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable); skipping PostgreSQL test")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	schema = fmt.Sprintf("loupe_sync_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(context.Background())
	})
	return dsn, schema, conn
}

func pgExec(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

const pgSourcesTmpl = `
sources:
  - name: users
    kind: postgres
    interval: 1m
    postgres:
      dsn: ${LOUPE_TEST_POSTGRES}
      table: %s.users
      cursor: updated_at
      id: id
      page_size: %d
    mapping:
      type: identify
      user_id: user_id
      timestamp: updated_at
      traits:
        email: email
        plan: plan
        spend: spend
        tags: tags
`

func mustRun(t testing.TB, r *Runner, names ...string) Result {
	t.Helper()
	res, err := r.Run(context.Background(), names)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("results: %+v", res)
	}
	return res[0]
}

func TestPostgresSync(t *testing.T) {
	_, schema, conn := pgTest(t)
	pgExec(t, conn, `CREATE TABLE `+schema+`.users (id bigint PRIMARY KEY, user_id text, email text, plan text,
		spend numeric(10,2), tags text[], updated_at timestamptz NOT NULL, blob bytea)`)
	// 25 rows; rows 5..14 share one timestamp so a page of 4 splits them.
	base := time.Date(2026, 11, 1, 0, 0, 0, 123456000, time.UTC)
	for i := 1; i <= 25; i++ {
		ts := base.Add(time.Duration(i) * time.Second)
		if i >= 5 && i <= 14 {
			ts = base.Add(5 * time.Second)
		}
		pgExec(t, conn, `INSERT INTO `+schema+`.users VALUES ($1,$2,$3,'free',$4,$5,$6,NULL)`,
			i, fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@example.com", i), float64(i)+0.5, []string{"a", "b"}, ts)
	}
	eng := openEngine(t)
	st := &commitCounter{Engine: eng}
	writeSources(t, eng.Dir(), fmt.Sprintf(pgSourcesTmpl, schema, 4))
	var pages int
	r := &Runner{Store: st, Progress: func(p Progress) {
		if !p.Done {
			pages++
		}
	}}
	ctx := context.Background()

	res := mustRun(t, r)
	if res.Error != nil || res.Fetched != 25 || res.Ingested != 25 || res.Duplicates != 0 || res.Quarantined != 0 {
		t.Fatalf("initial: %+v (error %v)", res, res.Err())
	}
	if pages < 7 {
		t.Errorf("progress pages = %d, want >= 7 with page size 4", pages)
	}
	if !strings.Contains(res.Cursor, "/ 25") {
		t.Errorf("cursor %q", res.Cursor)
	}
	// every row exactly once, mapped
	if s := engineStats(t, eng); s.Events != 25 || s.Profiles != 25 || s.Rejected != 0 {
		t.Fatalf("stats after the first run: %+v, want 25 events in 25 profiles", s)
	}
	for i := 1; i <= 25; i++ {
		ref := fmt.Sprintf("user_id:u%d", i)
		evs := userEvents(t, eng, ref)
		if len(evs) != 1 || evs[0].Type != "identify" {
			t.Fatalf("%s: %d events %+v, want one identify", ref, len(evs), evs)
		}
		var m map[string]any
		if err := json.Unmarshal(evs[0].Raw, &m); err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		tr, _ := m["traits"].(map[string]any)
		if m["userId"] != fmt.Sprintf("u%d", i) || tr["email"] != fmt.Sprintf("u%d@example.com", i) || tr["plan"] != "free" {
			t.Fatalf("%s: %s", ref, evs[0].Raw)
		}
		p, err := eng.Profile(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if p.Traits["email"].Value != fmt.Sprintf("u%d@example.com", i) || p.Traits["plan"].Value != "free" {
			t.Fatalf("%s: traits %+v", ref, p.Traits)
		}
	}
	cp := checkpoint(t, eng, "users")
	if cp == nil {
		t.Fatal("no checkpoint after the first run")
	}

	// nothing new: nothing fetched, nothing written
	before := st.batches.Load()
	res = mustRun(t, r)
	if res.Fetched != 0 || res.Ingested != 0 {
		t.Fatalf("idle run: %+v", res)
	}
	if n := st.batches.Load() - before; n != 1 { // only the status record
		t.Errorf("idle run wrote %d batches", n)
	}
	if got := checkpoint(t, eng, "users"); string(got) != string(cp) {
		t.Errorf("idle run moved the checkpoint: %s -> %s", cp, got)
	}
	if s := engineStats(t, eng); s.Events != 25 {
		t.Errorf("idle run: %d events", s.Events)
	}

	// update two rows after the checkpoint and add one: 3 new events
	pgExec(t, conn, `UPDATE `+schema+`.users SET plan='pro', updated_at=now() WHERE id IN (3, 7)`)
	pgExec(t, conn, `INSERT INTO `+schema+`.users VALUES (26,'u26','u26@example.com','free',1,NULL,now(),NULL)`)
	res = mustRun(t, r)
	if res.Fetched != 3 || res.Ingested != 3 || res.Duplicates != 0 {
		t.Fatalf("incremental: %+v", res)
	}
	if s := engineStats(t, eng); s.Events != 28 || s.Profiles != 26 {
		t.Fatalf("stats: %+v, want 28 events in 26 profiles", s)
	}
	for _, u := range []string{"u3", "u7"} {
		if n := len(userEvents(t, eng, "user_id:"+u)); n != 2 {
			t.Errorf("%s: %d events, want 2 (the update is a new event)", u, n)
		}
		p, err := eng.Profile(ctx, "user_id:"+u)
		if err != nil {
			t.Fatal(err)
		}
		if p.Traits["plan"].Value != "pro" {
			t.Errorf("%s: plan %v, want pro", u, p.Traits["plan"].Value)
		}
	}
	if n := len(userEvents(t, eng, "user_id:u26")); n != 1 {
		t.Errorf("u26: %d events", n)
	}
	cp = checkpoint(t, eng, "users")

	// a checkpoint rewound before the first row (as good as lost: the
	// engine has no way to delete one) re-reads everything, all duplicates
	rewound, _ := json.Marshal(pgCheckpoint{Cursor: "-infinity", ID: "0"})
	setCheckpoint(t, eng, "users", rewound)
	res = mustRun(t, r)
	if res.Ingested != 0 || res.Duplicates != 26 {
		t.Fatalf("re-read: %+v", res)
	}
	if s := engineStats(t, eng); s.Events != 28 {
		t.Fatalf("re-read: %d events, want 28", s.Events)
	}
	if got := checkpoint(t, eng, "users"); string(got) != string(cp) {
		t.Errorf("re-read ends at %s, want %s", got, cp)
	}

	// status
	ss, err := Status(ctx, eng, eng.Dir(), nil)
	if err != nil || len(ss) != 1 {
		t.Fatal(ss, err)
	}
	if ss[0].Rows != 28 || ss[0].LastRun.IsZero() || !ss[0].LagKnown || ss[0].Kind != "postgres" {
		t.Errorf("status %+v", ss[0])
	}
}

func TestPostgresEqualCursorAcrossPages(t *testing.T) {
	_, schema, conn := pgTest(t)
	pgExec(t, conn, `CREATE TABLE `+schema+`.users (id text PRIMARY KEY, user_id text, email text, plan text,
		spend numeric, tags text[], updated_at timestamptz NOT NULL)`)
	ts := time.Date(2026, 1, 2, 3, 4, 5, 999999000, time.UTC)
	for i := 0; i < 10; i++ { // all equal; ids sort as text
		pgExec(t, conn, `INSERT INTO `+schema+`.users VALUES ($1,$2,NULL,NULL,NULL,NULL,$3)`, fmt.Sprintf("id-%02d", i), fmt.Sprintf("u%d", i), ts)
	}
	eng := openEngine(t)
	writeSources(t, eng.Dir(), fmt.Sprintf(pgSourcesTmpl, schema, 3))
	r := &Runner{Store: eng}
	res := mustRun(t, r)
	if res.Fetched != 10 || res.Ingested != 10 {
		t.Fatalf("%+v %v", res, res.Err())
	}
	if s := engineStats(t, eng); s.Events != 10 || s.Profiles != 10 {
		t.Fatalf("stats %+v, want 10 events in 10 profiles", s)
	}
	end, _ := json.Marshal(pgCheckpoint{Cursor: "2026-01-02 03:04:05.999999+00", ID: "id-09"})
	if got := checkpoint(t, eng, "users"); string(got) != string(end) {
		t.Fatalf("checkpoint %s, want %s (microseconds kept)", got, end)
	}
	// checkpoint in the middle of the equal run, then resume
	cp, _ := json.Marshal(pgCheckpoint{Cursor: "2026-01-02 03:04:05.999999+00", ID: "id-04"})
	setCheckpoint(t, eng, "users", cp)
	res = mustRun(t, r)
	if res.Fetched != 5 || res.Duplicates != 5 || res.Ingested != 0 {
		t.Fatalf("resume mid-run: %+v %v", res, res.Err())
	}
	if s := engineStats(t, eng); s.Events != 10 {
		t.Fatalf("resume mid-run: %d events, want 10", s.Events)
	}
	if got := checkpoint(t, eng, "users"); string(got) != string(end) {
		t.Fatalf("checkpoint after resume %s, want %s", got, end)
	}
	for i := 5; i < 10; i++ { // the re-read rows are the ones after id-04
		if n := len(userEvents(t, eng, fmt.Sprintf("user_id:u%d", i))); n != 1 {
			t.Errorf("u%d: %d events", i, n)
		}
	}
}

func TestPostgresQuarantine(t *testing.T) {
	_, schema, conn := pgTest(t)
	pgExec(t, conn, `CREATE TABLE `+schema+`.orders (id int PRIMARY KEY, customer text, kind text, amount float8,
		happened text, ver int NOT NULL, payload bytea)`)
	rows := []string{
		`(1,'c1','Order Completed',10,'2026-01-01T00:00:00Z',1,NULL)`,
		`(2,NULL,'Order Completed',10,'2026-01-01T00:00:00Z',2,NULL)`,         // no user
		`(3,'c3','Order Completed',10,'yesterday-ish',3,NULL)`,                // bad timestamp
		`(4,'c4','Order Completed',10,'2026-01-01T00:00:00Z',4,'\xdeadbeef')`, // bytea property
		`(5,'c5',NULL,10,'2026-01-01T00:00:00Z',5,NULL)`,                      // no event name
		`(6,'c6','Order Completed','NaN','2026-01-01 10:00:00+02',6,NULL)`,    // NaN amount
		`(7,'c7','Order Completed',7.5,'2026-01-01 10:00:00',7,NULL)`,
	}
	pgExec(t, conn, `INSERT INTO `+schema+`.orders VALUES `+strings.Join(rows, ","))
	eng := openEngine(t)
	st := &commitCounter{Engine: eng}
	writeSources(t, eng.Dir(), `
sources:
  - name: orders
    kind: postgres
    postgres:
      dsn: ${LOUPE_TEST_POSTGRES}
      query: SELECT * FROM `+schema+`.orders WHERE id > 0
      cursor: ver
      id: id
    mapping:
      user_id: customer
      event: kind
      timestamp: happened
      properties:
        amount: amount
        payload: payload
`)
	res := mustRun(t, &Runner{Store: st})
	if res.Fetched != 7 || res.Ingested != 2 || res.Quarantined != 5 || res.Error != nil {
		t.Fatalf("%+v %v", res, res.Err())
	}
	want := map[string]string{"2": "no userId", "3": "cannot parse", "4": "bytea", "5": "event name", "6": "NaN"}
	qs := quarantined(t, eng, "orders")
	if len(qs) != 5 {
		t.Errorf("%d quarantined, want 5: %+v", len(qs), qs)
	}
	for _, q := range qs {
		if q.Source != "orders" || !strings.Contains(q.Reason, want[q.Key]) || want[q.Key] == "" {
			t.Errorf("quarantine %s %q", q.Key, q.Reason)
		}
		if !json.Valid(q.Data) {
			t.Errorf("quarantine data %s", q.Data)
		}
		delete(want, q.Key)
	}
	if len(want) != 0 {
		t.Errorf("not quarantined: %v", want)
	}
	if s := engineStats(t, eng); s.Events != 2 || s.Rejected != 0 {
		t.Fatalf("stats %+v, want the 2 good rows only", s)
	}
	wantTime := map[string]string{"c1": "2026-01-01T00:00:00Z", "c7": "2026-01-01T10:00:00Z"} // c7: zone-less is UTC
	for u, ts := range wantTime {
		evs := userEvents(t, eng, "user_id:"+u)
		if len(evs) != 1 {
			t.Fatalf("%s: %d events", u, len(evs))
		}
		var m map[string]any
		json.Unmarshal(evs[0].Raw, &m)
		if evs[0].Type != "track" || evs[0].Name != "Order Completed" || m["event"] != "Order Completed" || m["type"] != "track" {
			t.Errorf("%s: %+v %s", u, evs[0], evs[0].Raw)
		}
		if m["timestamp"] != ts || !evs[0].Time.Equal(mustTime(t, ts)) {
			t.Errorf("%s: timestamp %v / %v, want %s", u, m["timestamp"], evs[0].Time, ts)
		}
	}
	// preview writes nothing
	srcs, _ := LoadSources(eng.Dir())
	before, cp, status := st.batches.Load(), checkpoint(t, eng, "orders"), checkpoint(t, eng, statusKey("orders"))
	rows2, err := (&Runner{Store: st}).Test(context.Background(), srcs[0], 3)
	if err != nil || len(rows2) != 3 || rows2[0].Message == nil || rows2[1].Error == "" || rows2[2].Error == "" {
		t.Fatalf("preview %+v %v", rows2, err)
	}
	if st.batches.Load() != before {
		t.Error("preview wrote")
	}
	if s := engineStats(t, eng); s.Events != 2 || len(quarantined(t, eng, "")) != 5 {
		t.Errorf("preview changed the store: %+v", s)
	}
	if string(checkpoint(t, eng, "orders")) != string(cp) || string(checkpoint(t, eng, statusKey("orders"))) != string(status) {
		t.Error("preview moved a checkpoint")
	}
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
