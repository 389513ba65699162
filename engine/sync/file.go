package sync

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loupe-cdp/loupe/engine"
)

// fileID is a file as ingested: the same path with another size or content
// is a new file.
type fileID struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// fileCheckpoint lists the files ingested completely, and the file being
// read with how many records of it are committed.
type fileCheckpoint struct {
	Files   []fileID `json:"files"`
	Current *struct {
		fileID
		Records int `json:"records"`
	} `json:"current,omitempty"`
}

func (c fileCheckpoint) String() string {
	s := fmt.Sprintf("%d files", len(c.Files))
	if c.Current != nil {
		s += fmt.Sprintf(", %s at record %d", filepath.Base(c.Current.Path), c.Current.Records)
	}
	return s
}

type fileReader struct {
	src     Source
	cp      fileCheckpoint
	pending []fileID
	// the open file
	cur     *fileID
	f       *os.File
	it      recordIter
	emitted int
}

func openFile(s Source, dataDir string, cp []byte) (reader, error) {
	r := &fileReader{src: s}
	if cp != nil {
		if err := json.Unmarshal(cp, &r.cp); err != nil {
			return nil, fmt.Errorf("bad checkpoint: %w", err)
		}
	}
	pattern := s.File.Path
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(dataDir, pattern)
	}
	paths, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("file.path %q: %w", s.File.Path, err)
	}
	sort.Strings(paths)
	done := map[fileID]bool{}
	for _, f := range r.cp.Files {
		done[f] = true
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		sum, err := hashFile(p)
		if err != nil {
			return nil, err
		}
		id := fileID{Path: p, Size: st.Size(), SHA256: sum}
		if !done[id] {
			r.pending = append(r.pending, id)
		}
	}
	return r, nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (r *fileReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// recordIter yields raw messages with their line (NDJSON) or index.
type recordIter interface {
	next() ([]byte, int, error) // io.EOF at the end
}

func (r *fileReader) openNext() error {
	id := r.pending[0]
	r.pending = r.pending[1:]
	f, err := os.Open(id.Path)
	if err != nil {
		return err
	}
	r.f, r.cur, r.emitted = f, &id, 0
	br := bufio.NewReaderSize(f, 1<<20)
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", id.Path, err)
		}
		in = zr
	}
	zb := bufio.NewReaderSize(in, 1<<20)
	first := firstByte(zb)
	name := strings.TrimSuffix(strings.ToLower(id.Path), ".gz")
	switch {
	case first == '[':
		dec := json.NewDecoder(zb)
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("%s: %w", id.Path, err)
		}
		r.it = &arrayIter{dec: dec}
	case first == '{' && strings.HasSuffix(name, ".json"):
		r.it = &streamIter{dec: json.NewDecoder(zb)}
	default:
		r.it = &lineIter{r: zb}
	}
	// resume inside a file that was being read
	if c := r.cp.Current; c != nil && c.fileID == id {
		for r.emitted < c.Records {
			if _, _, err := r.it.next(); err != nil {
				break
			}
			r.emitted++
		}
	}
	return nil
}

func firstByte(br *bufio.Reader) byte {
	for i := 1; ; i++ {
		b, err := br.Peek(i)
		if err != nil || len(b) < i {
			return 0
		}
		switch c := b[i-1]; c {
		case ' ', '\t', '\r', '\n', 0xEF, 0xBB, 0xBF:
			continue
		default:
			return c
		}
	}
}

func (r *fileReader) next(ctx context.Context) (page, error) {
	var p page
	for r.cur == nil {
		if len(r.pending) == 0 {
			p.done = true
			p.cursor = r.cp.String()
			return p, nil
		}
		if err := r.openNext(); err != nil {
			return p, err
		}
	}
	size := 0
	eof := false
	for len(p.msgs) < MaxBatch && size < MaxBatchBytes/2 {
		rec, line, err := r.it.next()
		if errors.Is(err, io.EOF) {
			eof = true
			break
		}
		if err != nil {
			// a broken file (bad gzip, bad JSON array) is reported and
			// stays pending: nothing after the error is trusted
			return p, fmt.Errorf("%s record %d: %w", r.cur.Path, r.emitted+1, err)
		}
		r.emitted++
		p.fetched++
		size += len(rec)
		p.msgs = append(p.msgs, engine.Message{Data: rec, Source: r.cur.Path, Line: line})
	}
	if eof {
		r.cp.Files = append(r.cp.Files, *r.cur)
		r.cp.Current = nil
		r.close()
		r.cur = nil
	} else {
		r.cp.Current = &struct {
			fileID
			Records int `json:"records"`
		}{*r.cur, r.emitted}
	}
	p.checkpoint, _ = json.Marshal(r.cp)
	p.cursor = r.cp.String()
	return p, nil
}

type lineIter struct {
	r    *bufio.Reader
	line int
}

func (it *lineIter) next() ([]byte, int, error) {
	for {
		b, err := it.r.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			return nil, 0, err
		}
		it.line++
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			if err != nil {
				return nil, 0, err
			}
			continue
		}
		return b, it.line, nil
	}
}

type arrayIter struct {
	dec *json.Decoder
	n   int
}

func (it *arrayIter) next() ([]byte, int, error) {
	if !it.dec.More() {
		return nil, 0, io.EOF
	}
	var raw json.RawMessage
	if err := it.dec.Decode(&raw); err != nil {
		return nil, 0, err
	}
	it.n++
	return raw, it.n, nil
}

type streamIter struct {
	dec *json.Decoder
	n   int
}

func (it *streamIter) next() ([]byte, int, error) {
	var raw json.RawMessage
	if err := it.dec.Decode(&raw); err != nil {
		return nil, 0, err
	}
	it.n++
	return raw, it.n, nil
}
