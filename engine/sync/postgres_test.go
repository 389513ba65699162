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
	st := newMemStore(t)
	writeSources(t, st.dir, fmt.Sprintf(pgSourcesTmpl, schema, 4))
	var pages int
	r := &Runner{Store: st, Progress: func(p Progress) {
		if !p.Done {
			pages++
		}
	}}

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
	seen := map[string]bool{}
	for _, raw := range st.snapshot() {
		var m map[string]any
		json.Unmarshal(raw, &m)
		if m["type"] != "identify" {
			t.Fatalf("type: %s", raw)
		}
		tr := m["traits"].(map[string]any)
		if tr["email"] != fmt.Sprintf("%s@example.com", m["userId"]) || tr["plan"] != "free" {
			t.Fatalf("traits: %s", raw)
		}
		seen[m["userId"].(string)] = true
	}
	if len(seen) != 25 {
		t.Fatalf("users seen %d, want 25", len(seen))
	}

	// nothing new: nothing fetched, nothing written
	before := st.batches
	res = mustRun(t, r)
	if res.Fetched != 0 || res.Ingested != 0 {
		t.Fatalf("idle run: %+v", res)
	}
	if st.batches != before+1 { // only the status record
		t.Errorf("idle run wrote %d batches", st.batches-before)
	}

	// update two rows after the checkpoint and add one: 3 new events
	pgExec(t, conn, `UPDATE `+schema+`.users SET plan='pro', updated_at=now() WHERE id IN (3, 7)`)
	pgExec(t, conn, `INSERT INTO `+schema+`.users VALUES (26,'u26','u26@example.com','free',1,NULL,now(),NULL)`)
	res = mustRun(t, r)
	if res.Fetched != 3 || res.Ingested != 3 || res.Duplicates != 0 {
		t.Fatalf("incremental: %+v", res)
	}
	if n := len(st.snapshot()); n != 28 {
		t.Fatalf("events = %d, want 28", n)
	}

	// a lost checkpoint re-reads everything, all duplicates
	delete(st.checkpoints, "users")
	res = mustRun(t, r)
	if res.Ingested != 0 || res.Duplicates != 26 {
		t.Fatalf("re-read: %+v", res)
	}

	// status
	ss, err := Status(context.Background(), st, st.dir, nil)
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
	st := newMemStore(t)
	writeSources(t, st.dir, fmt.Sprintf(pgSourcesTmpl, schema, 3))
	r := &Runner{Store: st}
	res := mustRun(t, r)
	if res.Fetched != 10 || res.Ingested != 10 {
		t.Fatalf("%+v %v", res, res.Err())
	}
	// checkpoint in the middle of the equal run, then resume
	cp, _ := json.Marshal(pgCheckpoint{Cursor: "2026-01-02 03:04:05.999999+00", ID: "id-04"})
	st.checkpoints["users"] = cp
	res = mustRun(t, r)
	if res.Fetched != 5 || res.Duplicates != 5 {
		t.Fatalf("resume mid-run: %+v %v", res, res.Err())
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
	st := newMemStore(t)
	writeSources(t, st.dir, `
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
	for _, q := range st.quarantine {
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
	for _, raw := range st.snapshot() {
		var m map[string]any
		json.Unmarshal(raw, &m)
		if m["event"] != "Order Completed" || m["type"] != "track" {
			t.Errorf("%s", raw)
		}
		if m["userId"] == "c7" && m["timestamp"] != "2026-01-01T10:00:00Z" {
			t.Errorf("zone-less timestamp: %s", raw)
		}
	}
	// preview writes nothing
	srcs, _ := LoadSources(st.dir)
	before := st.batches
	rows2, err := (&Runner{Store: st}).Test(context.Background(), srcs[0], 3)
	if err != nil || len(rows2) != 3 || rows2[0].Message == nil || rows2[1].Error == "" || rows2[2].Error == "" {
		t.Fatalf("preview %+v %v", rows2, err)
	}
	if st.batches != before {
		t.Error("preview wrote")
	}
}
