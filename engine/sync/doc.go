// Package sync pulls customer data from remote sources into a Loupe data
// dir: PostgreSQL tables or queries, HTTP APIs, and NDJSON/JSON/gzip files.
// (`loupe serve`, the Segment-compatible collector, is package
// engine/collector.)
//
// # sources.yaml
//
// Sources are declared in sources.yaml in the data dir:
//
//	sources:
//	  # Customers table -> identify calls, read by keyset on (updated_at, id).
//	  - name: crm_customers           # letters, digits, _ . -
//	    kind: postgres                # postgres | http | file
//	    interval: 5m                  # for `loupe sync --watch` (default 5m)
//	    postgres:
//	      dsn: ${CRM_PG_DSN}          # secrets only as ${ENV}
//	      table: public.customers     # or query: SELECT ... (no ORDER BY/LIMIT)
//	      cursor: updated_at          # any orderable column
//	      id: id                      # unique; breaks ties between equal cursors
//	      page_size: 1000             # rows per page and transaction (max 2000)
//	    mapping:
//	      type: identify              # identify | track (default: track if event set)
//	      user_id: customer_id        # column -> userId
//	      anonymous_id: device_id     # column -> anonymousId (one of the two needed)
//	      timestamp: updated_at       # default: the cursor column
//	      traits:                     # trait name: column
//	        email: email
//	        plan: plan
//	      # rest: traits              # every other column becomes a trait
//
//	  # Orders query -> track "Order Completed".
//	  - name: shop_orders
//	    kind: postgres
//	    interval: 1m
//	    postgres:
//	      dsn: postgres://loupe@db.internal:5432/shop?password=${SHOP_PG_PASSWORD}
//	      query: SELECT o.*, c.external_id FROM orders o JOIN customers c ON c.id = o.customer_id
//	      cursor: paid_at
//	      id: id
//	    mapping:
//	      type: track
//	      user_id: external_id
//	      event_name: Order Completed # a constant; or event: COLUMN
//	      properties:
//	        order_id: id
//	        revenue: total
//
//	  # A REST API; records are Segment messages already, so no mapping.
//	  - name: app_events
//	    kind: http
//	    interval: 30s
//	    http:
//	      url: https://events.example.com/v1/export?limit=500
//	      headers:
//	        Authorization: Bearer ${EVENTS_API_TOKEN}
//	      format: auto                # auto | ndjson | json
//	      data_field: data            # the records array in an object response
//	      pagination:
//	        mode: next_link           # none | next_link | cursor | since
//	        next_field: next          # next_link: response field (or Link: rel="next")
//	        # cursor_field: meta.next_cursor, cursor_param: cursor   (mode: cursor)
//	        # since_field: updated_at, since_param: since, start: 2026-01-01T00:00:00Z (mode: since)
//	      timeout: 30s                # per request
//	      max_retries: 5
//	      # max_pages: 100            # bound one run
//	    # mapping: same keys as above, with dot paths (user.id) for fields
//
//	  # Exported files; each file is read once (path, size and SHA-256).
//	  - name: exports
//	    kind: file
//	    file:
//	      path: /srv/exports/*.ndjson.gz   # a file or glob; relative to the data dir
//
// ${NAME} is replaced by the environment variable NAME when a sync runs; an
// unset variable fails that source. Expanded values are never written to
// the data dir, to checkpoints, or to error messages. A password written
// literally into a DSN, a URL, or an Authorization/token/key header is
// refused when sources.yaml is loaded.
//
// # Mapping
//
// Mapped values: identifiers must be strings, integers, UUIDs or integral
// numerics; timestamps are timestamp columns, RFC 3339 or PostgreSQL text
// (without a zone: UTC) or Unix seconds/milliseconds; traits and properties
// take strings, numbers, booleans, times (RFC 3339 UTC), UUIDs, json/jsonb,
// arrays. Null values are left out. A record that does not fit — no userId
// and no anonymousId, a null or non-string event name, an unparsable
// timestamp, a bytea or NaN value — is quarantined with the source, its
// primary key (HTTP: page URL#record) and the reason, and the sync goes on.
// Track messages carry mapped traits in context.traits; identify messages
// fold properties into traits.
//
// PostgreSQL messageIds are derived from source name, primary key and cursor
// value ("sync-" + 32 hex digits) unless mapping.message_id names a column:
// re-reading a row is a duplicate, an updated row (new cursor value) is a
// new event.
//
// # Checkpoints and guarantees
//
// Every page's events and the source's checkpoint are written in one
// IngestBatch (one Badger transaction, fsync'd), so a sync killed at any
// moment resumes where the last committed page ended, without losing or
// doubling an event. Checkpoints: PostgreSQL {"cursor":"...","id":"..."}
// (PostgreSQL's ::text of both, so microseconds round-trip), read with
// WHERE (cursor, id) > ($1, $2) ORDER BY cursor, id — rows sharing a cursor
// value across a page boundary are neither skipped nor repeated; rows whose
// cursor or id is NULL are never read. HTTP {"next":URL} / {"cursor":C} /
// {"since":S}; the last page is read again on the next run (its records
// come back as duplicates). Files: the list of files done plus the file
// being read and how many records of it are committed.
//
// HTTP requests are retried with exponential backoff and jitter (500ms
// doubling to 30s) on network errors, timeouts, truncated bodies and 5xx;
// 429 and 503 wait for Retry-After (seconds or HTTP date, at most 5
// minutes). A page that does not parse is quarantined (source, page URL,
// reason, the first 64 KB) and the run stops with an error at the last good
// checkpoint; the next run retries that page.
//
// After each run a status record (last run, result, total rows, newest
// cursor time, last error) is kept under the checkpoint name
// "sync-status/NAME"; Status reads it for `loupe sources list` and the
// TUI's Sync tab. Besides it, a run with nothing new changes nothing.
//
// Quarantined records go to Engine.Quarantine (list them with
// Engine.Quarantined). Messages the engine itself rejects go to
// rejects.ndjson and are counted in Result.Quarantined too.
package sync
