package sync

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// SourcesFile is the name of the sources declaration in the data dir.
const SourcesFile = "sources.yaml"

// Source kinds.
const (
	KindPostgres = "postgres"
	KindHTTP     = "http"
	KindFile     = "file"
)

// ErrNoSource means a name given to Run or Test is not declared.
var ErrNoSource = errors.New("no such source")

// Source is one entry of sources.yaml, as written: ${ENV} references are
// still unexpanded, so a Source can be shown without revealing secrets.
type Source struct {
	Name     string          `yaml:"name" json:"name"`
	Kind     string          `yaml:"kind" json:"kind"`
	Interval Duration        `yaml:"interval,omitempty" json:"interval,omitempty"`
	Postgres *PostgresConfig `yaml:"postgres,omitempty" json:"postgres,omitempty"`
	HTTP     *HTTPConfig     `yaml:"http,omitempty" json:"http,omitempty"`
	File     *FileConfig     `yaml:"file,omitempty" json:"file,omitempty"`
	Mapping  *Mapping        `yaml:"mapping,omitempty" json:"mapping,omitempty"`
}

// PostgresConfig reads a table or a query by keyset on (Cursor, ID).
type PostgresConfig struct {
	DSN      string `yaml:"dsn" json:"dsn"`
	Table    string `yaml:"table,omitempty" json:"table,omitempty"`
	Query    string `yaml:"query,omitempty" json:"query,omitempty"`
	Cursor   string `yaml:"cursor" json:"cursor"`
	ID       string `yaml:"id" json:"id"`
	PageSize int    `yaml:"page_size,omitempty" json:"page_size,omitempty"`
}

// HTTPConfig reads pages of records from a URL.
type HTTPConfig struct {
	URL     string            `yaml:"url" json:"url"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Format is auto (default), ndjson, or json.
	Format string `yaml:"format,omitempty" json:"format,omitempty"`
	// DataField names the array of records in an object response
	// (default "data"; dot-separated path).
	DataField  string     `yaml:"data_field,omitempty" json:"data_field,omitempty"`
	Pagination Pagination `yaml:"pagination,omitempty" json:"pagination,omitempty"`
	Timeout    Duration   `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	MaxRetries int        `yaml:"max_retries,omitempty" json:"max_retries,omitempty"`
	// MaxPages bounds one run (0: no bound).
	MaxPages int `yaml:"max_pages,omitempty" json:"max_pages,omitempty"`
}

// Pagination says how to get from one page to the next.
type Pagination struct {
	// Mode is none (default), next_link, cursor, or since.
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// NextField is the response field holding the next page's URL
	// (next_link; default "next"). A Link: <...>; rel="next" header works too.
	NextField string `yaml:"next_field,omitempty" json:"next_field,omitempty"`
	// CursorField is the response field holding the next cursor (cursor;
	// default "next_cursor"), sent back as CursorParam (default "cursor").
	CursorField string `yaml:"cursor_field,omitempty" json:"cursor_field,omitempty"`
	CursorParam string `yaml:"cursor_param,omitempty" json:"cursor_param,omitempty"`
	// SinceParam (default "since") carries the greatest SinceField
	// (default "timestamp") seen so far (since).
	SinceParam string `yaml:"since_param,omitempty" json:"since_param,omitempty"`
	SinceField string `yaml:"since_field,omitempty" json:"since_field,omitempty"`
	// Start is the since value of the very first run (since; optional).
	Start string `yaml:"start,omitempty" json:"start,omitempty"`
}

// FileConfig reads NDJSON, JSON, or gzip files.
type FileConfig struct {
	// Path is a file or a glob (filepath.Match syntax); relative paths are
	// relative to the data dir.
	Path string `yaml:"path" json:"path"`
}

// Duration is a time.Duration written as "5m" in YAML and JSON.
type Duration time.Duration

// UnmarshalYAML reads "90s", "5m", "1h".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// DefaultInterval is a source's watch interval when it declares none.
const DefaultInterval = 5 * time.Minute

// EveryInterval returns the watch interval.
func (s Source) EveryInterval() time.Duration {
	if s.Interval <= 0 {
		return DefaultInterval
	}
	return time.Duration(s.Interval)
}

type sourcesFile struct {
	Sources []Source `yaml:"sources"`
}

// LoadSources reads and validates dataDir/sources.yaml. A missing file is
// no sources, not an error. ${ENV} references are left unexpanded.
func LoadSources(dataDir string) ([]Source, error) {
	path := filepath.Join(dataDir, SourcesFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseSources(data, path)
}

// ParseSources parses and validates a sources.yaml document; name is used
// in error messages.
func ParseSources(data []byte, name string) ([]Source, error) {
	var f sourcesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	seen := map[string]bool{}
	for i := range f.Sources {
		s := &f.Sources[i]
		if err := s.validate(); err != nil {
			return nil, fmt.Errorf("%s: source %d (%q): %w", name, i+1, s.Name, err)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%s: source %q declared twice", name, s.Name)
		}
		seen[s.Name] = true
	}
	return f.Sources, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (s *Source) validate() error {
	if !nameRE.MatchString(s.Name) {
		return errors.New("name must be letters, digits, '_', '.', '-'")
	}
	set := 0
	for _, p := range []bool{s.Postgres != nil, s.HTTP != nil, s.File != nil} {
		if p {
			set++
		}
	}
	if set > 1 {
		return errors.New("only one of postgres, http, file may be set")
	}
	switch s.Kind {
	case KindPostgres:
		p := s.Postgres
		if p == nil {
			return errors.New("kind postgres needs a postgres: section")
		}
		if p.DSN == "" {
			return errors.New("postgres.dsn is required (e.g. ${PG_DSN})")
		}
		if err := noLiteralSecretInDSN(p.DSN); err != nil {
			return err
		}
		if (p.Table == "") == (p.Query == "") {
			return errors.New("postgres needs exactly one of table, query")
		}
		if p.Cursor == "" || p.ID == "" {
			return errors.New("postgres.cursor and postgres.id are required (e.g. updated_at, id)")
		}
		if p.PageSize < 0 || p.PageSize > MaxBatch {
			return fmt.Errorf("postgres.page_size must be 1..%d", MaxBatch)
		}
		if s.Mapping == nil {
			return errors.New("postgres sources need a mapping")
		}
	case KindHTTP:
		h := s.HTTP
		if h == nil {
			return errors.New("kind http needs an http: section")
		}
		if h.URL == "" {
			return errors.New("http.url is required")
		}
		if u, err := url.Parse(h.URL); err == nil && u.User != nil {
			if _, has := u.User.Password(); has && !strings.Contains(h.URL, "${") {
				return errors.New("http.url holds a password: reference it as ${ENV}")
			}
		}
		for k, v := range h.Headers {
			if sensitiveHeader(k) && !strings.Contains(v, "${") {
				return fmt.Errorf("http.headers.%s holds a literal secret: reference it as ${ENV}", k)
			}
		}
		switch h.Format {
		case "", "auto", "ndjson", "json":
		default:
			return fmt.Errorf("http.format %q: want auto, ndjson or json", h.Format)
		}
		switch h.Pagination.Mode {
		case "", "none", "next_link", "cursor", "since":
		default:
			return fmt.Errorf("http.pagination.mode %q: want none, next_link, cursor or since", h.Pagination.Mode)
		}
	case KindFile:
		if s.File == nil || s.File.Path == "" {
			return errors.New("kind file needs file.path")
		}
	default:
		return fmt.Errorf("kind %q: want postgres, http or file", s.Kind)
	}
	if s.Mapping != nil {
		if err := s.Mapping.validate(); err != nil {
			return fmt.Errorf("mapping: %w", err)
		}
	}
	return nil
}

func sensitiveHeader(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"authorization", "token", "key", "secret", "cookie", "password"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// noLiteralSecretInDSN refuses a password written into sources.yaml.
func noLiteralSecretInDSN(dsn string) error {
	if strings.Contains(dsn, "${") {
		return nil
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return errors.New("postgres.dsn holds a password: reference the DSN or password as ${ENV}")
		}
	}
	if strings.Contains(strings.ToLower(dsn), "password=") {
		return errors.New("postgres.dsn holds a password: reference the DSN or password as ${ENV}")
	}
	return nil
}

var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// ExpandEnv replaces every ${NAME} in s with the environment variable NAME
// through lookup (os.LookupEnv when nil). An unset variable is an error,
// never an empty string. Only the ${NAME} form is expanded: a bare $ stays.
func ExpandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var missing []string
	out := envRE.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// resolved returns a copy of s with ${ENV} expanded in its connection
// settings (DSN, URL, headers, file path). The copy is used for one run and
// never written anywhere.
func (s Source) resolved(lookup func(string) (string, bool)) (Source, error) {
	var err error
	exp := func(v string) string {
		if err != nil {
			return ""
		}
		var out string
		out, err = ExpandEnv(v, lookup)
		return out
	}
	r := s
	if s.Postgres != nil {
		p := *s.Postgres
		p.DSN = exp(p.DSN)
		r.Postgres = &p
	}
	if s.HTTP != nil {
		h := *s.HTTP
		h.URL = exp(h.URL)
		h.Headers = make(map[string]string, len(s.HTTP.Headers))
		for k, v := range s.HTTP.Headers {
			h.Headers[k] = exp(v)
		}
		r.HTTP = &h
	}
	if s.File != nil {
		f := *s.File
		f.Path = exp(f.Path)
		r.File = &f
	}
	if err != nil {
		return Source{}, fmt.Errorf("source %s: %w", s.Name, err)
	}
	return r, nil
}
