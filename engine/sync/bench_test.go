package sync

import (
	"context"
	"fmt"
	"testing"

	"github.com/loupe-cdp/loupe/engine"
)

// BenchmarkPostgresSync syncs a 20,000-row table into a fresh engine per
// iteration; rows/s is the figure for BENCHMARKS.md.
func BenchmarkPostgresSync(b *testing.B) {
	_, schema, conn := pgTest(b)
	const rows = 20000
	pgExec(b, conn, `CREATE TABLE `+schema+`.customers (id bigint PRIMARY KEY, customer text, email text, plan text, ltv numeric(10,2), updated_at timestamptz NOT NULL)`)
	pgExec(b, conn, `INSERT INTO `+schema+`.customers SELECT g, 'u' || g, 'u' || g || '@example.com', (ARRAY['free','pro','team'])[1 + g % 3], g * 0.5,
		timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, $1) g`, rows)
	src := fmt.Sprintf(`
sources:
  - name: customers
    kind: postgres
    postgres: {dsn: "${LOUPE_TEST_POSTGRES}", table: %s.customers, cursor: updated_at, id: id, page_size: 2000}
    mapping:
      type: identify
      user_id: customer
      traits: {email: email, plan: plan, ltv: ltv}
`, schema)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		writeSources(b, dir, src)
		eng, err := engine.Open(dir, engine.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := (&Runner{Store: eng}).Run(context.Background(), nil)
		b.StopTimer()
		if err != nil || res[0].Error != nil || res[0].Ingested != rows {
			b.Fatal(res, err)
		}
		eng.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
