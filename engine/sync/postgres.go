package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/loupe-cdp/loupe/engine"
)

// DefaultPageSize is the PostgreSQL page size when page_size is not set.
const DefaultPageSize = 1000

// pgCheckpoint is the position after the last row read: the cursor and id
// values as PostgreSQL prints them (::text), so they round-trip exactly
// (microseconds included) when sent back as parameters.
type pgCheckpoint struct {
	Cursor string `json:"cursor"`
	ID     string `json:"id"`
}

func (c pgCheckpoint) String() string {
	if c.Cursor == "" && c.ID == "" {
		return ""
	}
	return c.Cursor + " / " + c.ID
}

type pgReader struct {
	src      Source
	conn     *pgx.Conn
	pos      *pgCheckpoint
	pageSize int
	sql      string
	first    string
}

func quoteIdent(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

func quoteTable(name string) string {
	return pgx.Identifier(strings.Split(name, ".")).Sanitize()
}

// keysetSQL builds the two page queries: the first page, and every later
// one, which starts strictly after ($1, $2) in (cursor, id) order. The row
// comparison keeps rows with equal cursor values across a page boundary.
func keysetSQL(p *PostgresConfig, limit int) (first, next string) {
	inner := p.Query
	if inner == "" {
		inner = "SELECT * FROM " + quoteTable(p.Table)
	}
	inner = strings.TrimRight(strings.TrimSpace(inner), ";")
	c, id := "src."+quoteIdent(p.Cursor), "src."+quoteIdent(p.ID)
	head := fmt.Sprintf("SELECT src.*, (%s)::text AS __loupe_cursor, (%s)::text AS __loupe_id FROM (%s) AS src WHERE %s IS NOT NULL AND %s IS NOT NULL",
		c, id, inner, c, id)
	tail := fmt.Sprintf(" ORDER BY %s, %s LIMIT %d", c, id, limit)
	return head + tail, head + fmt.Sprintf(" AND (%s, %s) > ($1, $2)", c, id) + tail
}

func openPostgres(ctx context.Context, s Source, cp []byte) (reader, error) {
	p := s.Postgres
	r := &pgReader{src: s, pageSize: p.PageSize}
	if r.pageSize <= 0 {
		r.pageSize = DefaultPageSize
	}
	if cp != nil {
		var c pgCheckpoint
		if err := json.Unmarshal(cp, &c); err != nil {
			return nil, fmt.Errorf("bad checkpoint %q: %w", cp, err)
		}
		r.pos = &c
	}
	r.first, r.sql = keysetSQL(p, r.pageSize)
	cfg, err := pgx.ParseConfig(p.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres dsn: %w", redactErr(err, p.DSN))
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "loupe-sync"
	r.conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres connect: %w", redactErr(err, p.DSN))
	}
	return r, nil
}

// redactErr keeps a DSN (which may carry an expanded secret) out of errors.
func redactErr(err error, dsn string) error {
	if dsn == "" || !strings.Contains(err.Error(), dsn) {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), dsn, "<dsn>"))
}

func (r *pgReader) close() {
	if r.conn != nil {
		r.conn.Close(context.Background())
	}
}

func (r *pgReader) next(ctx context.Context) (page, error) {
	var rows pgx.Rows
	var err error
	if r.pos == nil {
		rows, err = r.conn.Query(ctx, r.first)
	} else {
		rows, err = r.conn.Query(ctx, r.sql, r.pos.Cursor, r.pos.ID)
	}
	if err != nil {
		return page{}, fmt.Errorf("postgres query: %w", err)
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	names := make([]string, len(fds))
	index := make(map[string]int, len(fds))
	for i, fd := range fds {
		names[i] = fd.Name
		if _, dup := index[fd.Name]; !dup {
			index[fd.Name] = i
		}
	}
	m := r.src.Mapping
	var p page
	var last pgCheckpoint
	var size int
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return page{}, fmt.Errorf("postgres row: %w", err)
		}
		rec := rowRecord{names: names, index: index, vals: vals}
		cur, _ := vals[index["__loupe_cursor"]].(string)
		id, _ := vals[index["__loupe_id"]].(string)
		last = pgCheckpoint{Cursor: cur, ID: id}
		p.fetched++
		var defTime any
		if m.Timestamp == "" {
			defTime = vals[index[r.src.Postgres.Cursor]]
		}
		data, err := m.Apply(rec, DeriveMessageID(r.src.Name, id, cur), defTime)
		if err != nil {
			p.bad = append(p.bad, badRecord{key: id, reason: fmt.Sprintf("row %s=%s: %v", r.src.Postgres.ID, id, err), data: rowJSON(rec), line: p.fetched})
			continue
		}
		if t, err := toTime(vals[index[r.src.Postgres.Cursor]]); err == nil && t.After(p.newest) {
			p.newest = t
		}
		size += len(data)
		p.msgs = append(p.msgs, engine.Message{Data: data, Source: r.src.Name + ":" + id, Line: p.fetched})
	}
	if err := rows.Err(); err != nil {
		return page{}, fmt.Errorf("postgres query: %w", err)
	}
	if p.fetched == 0 {
		p.done = true
		return p, nil
	}
	r.pos = &last
	p.checkpoint, _ = json.Marshal(last)
	p.cursor = last.String()
	p.done = p.fetched < r.pageSize
	return p, nil
}

// rowJSON renders a row for the quarantine, unsupported values as text.
func rowJSON(rec rowRecord) []byte {
	out := make(map[string]any, len(rec.names))
	for i, n := range rec.names {
		if strings.HasPrefix(n, "__loupe_") {
			continue
		}
		v, err := jsonValue(rec.vals[i])
		if err != nil {
			switch x := rec.vals[i].(type) {
			case []byte:
				v = fmt.Sprintf("\\x%x", x)
			case time.Time:
				v = x.String()
			default:
				v = fmt.Sprint(x)
			}
		}
		out[n] = v
	}
	b, _ := json.Marshal(out)
	return b
}
