package segment

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
)

// MaxMessageSize bounds one message (one NDJSON line, one array element,
// one batch envelope). Larger messages are skipped with ErrTooLarge.
const MaxMessageSize = 32 << 20

// Record is one raw message read from an input, not yet parsed.
type Record struct {
	Data []byte // one message's bytes; owned by the caller
	Line int    // 1-based line where the message starts in the (decompressed) input
	Err  error  // a framing problem at Line (wraps ErrMalformed or ErrTooLarge); Data is nil
}

// Reader splits an input into Segment messages. It accepts, optionally
// gzip-compressed (detected by its magic bytes) and after an optional UTF-8
// byte order mark:
//
//   - NDJSON: one object per line (CRLF or LF; blank lines skipped);
//   - a JSON array of messages;
//   - batch envelopes {"batch": [...], "context": {...}, "sentAt": "..."},
//     on one line or pretty-printed over many, alone or as NDJSON lines;
//   - any sequence of (possibly pretty-printed) objects.
//
// The format is chosen from the first non-space byte: '[' means an array,
// anything else means objects read line by line.
//
// Batch envelopes are expanded into their messages. Following Segment's
// semantics the envelope's defaults are written into each message's bytes:
// members of the envelope's context that the message's context lacks are
// added to it (shallow merge, the message wins), and the envelope's sentAt
// is added to messages without one. See appendMerged.
//
// Framing problems (a truncated line, an unterminated string, an array
// element not followed by ',' or ']', a message over MaxMessageSize) are
// reported in Record.Err and reading resumes with the next line (NDJSON) or
// element (arrays). Next returns a non-nil error only for I/O failures,
// including a corrupt gzip stream, and io.EOF at the end.
type Reader struct {
	name string
	br   *bufio.Reader
	max  int

	line    int // line number of the next unread byte
	format  byte
	pending []Record
	arena   []byte
	scratch []byte
	eof     bool
	done    bool // array mode: stop after trailing garbage

	// line mode: a value spanning several lines being accumulated
	acc      []byte
	accLine  int
	accDepth int

	// array mode
	arrOpen, arrClosed, needSep bool
	val                         []byte
}

const readBufSize = 256 << 10

// NewReader returns a Reader over r; name is used in error messages.
// It fails only when r starts as gzip but is not a readable gzip stream.
func NewReader(r io.Reader, name string) (*Reader, error) {
	br := bufio.NewReaderSize(r, readBufSize)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open %s: gzip: %w", name, err)
		}
		br = bufio.NewReaderSize(zr, readBufSize)
	}
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	return &Reader{name: name, br: br, max: MaxMessageSize, line: 1}, nil
}

// Next returns the next record, or io.EOF after the last one.
func (r *Reader) Next() (Record, error) {
	for len(r.pending) == 0 {
		var err error
		if r.format == 0 {
			err = r.detect()
		} else if r.format == '[' {
			err = r.stepArray()
		} else {
			err = r.stepLine()
		}
		if err != nil {
			if err == io.EOF {
				return Record{}, io.EOF
			}
			return Record{}, fmt.Errorf("read %s line %d: %w", r.name, r.line, err)
		}
	}
	rec := r.pending[0]
	r.pending[0] = Record{}
	r.pending = r.pending[1:]
	return rec, nil
}

// detect chooses the format from the first non-space byte.
func (r *Reader) detect() error {
	c, err := r.peekNonSpace()
	if err != nil {
		return err
	}
	r.format = '{'
	if c == '[' {
		r.format = '['
	}
	return nil
}

// peekNonSpace skips white space, counting lines, and returns the next byte
// without consuming it.
func (r *Reader) peekNonSpace() (byte, error) {
	for {
		b, err := r.br.Peek(1)
		if len(b) == 0 {
			if err == nil {
				err = io.EOF
			}
			return 0, err
		}
		if !isSpace(b[0]) {
			return b[0], nil
		}
		if b[0] == '\n' {
			r.line++
		}
		_, _ = r.br.Discard(1)
	}
}

func (r *Reader) malformed(line int, format string, args ...any) {
	err := fmt.Errorf("%s line %d: %w: %s", r.name, line, ErrMalformed, fmt.Sprintf(format, args...))
	r.pending = append(r.pending, Record{Line: line, Err: err})
}

func (r *Reader) tooLarge(line int) {
	err := fmt.Errorf("%s line %d: %w (%d bytes)", r.name, line, ErrTooLarge, r.max)
	r.pending = append(r.pending, Record{Line: line, Err: err})
}

// keep copies b into the arena: records share large blocks instead of
// paying one allocation each. The three-index slice stops appends by the
// caller from running into the next record.
func (r *Reader) keep(b []byte) []byte {
	if cap(r.arena)-len(r.arena) < len(b) {
		r.arena = make([]byte, 0, max(readBufSize, len(b)))
	}
	start := len(r.arena)
	r.arena = append(r.arena, b...)
	return r.arena[start:len(r.arena):len(r.arena)]
}

// emit queues one complete value, expanding it if it is a batch envelope.
func (r *Reader) emit(data []byte, line int) {
	if bytes.Contains(data, []byte(`"batch"`)) {
		if env, ok := parseEnvelope(data); ok {
			nl, pos := 0, 0
			for _, e := range env.elems {
				nl += bytes.Count(data[pos:e[0]], []byte{'\n'})
				pos = e[0]
				r.scratch = appendMerged(r.scratch[:0], data[e[0]:e[1]], env.context, env.sentAt)
				r.pending = append(r.pending, Record{Data: r.keep(r.scratch), Line: line + nl})
			}
			return
		}
	}
	r.pending = append(r.pending, Record{Data: r.keep(data), Line: line})
}

// readLine returns the next line without its line ending; it is valid until
// the next read. A line longer than the limit is consumed and reported with
// tooLong. At the end of input it returns io.EOF.
func (r *Reader) readLine() (line []byte, no int, tooLong bool, err error) {
	if r.eof {
		return nil, r.line, false, io.EOF
	}
	no = r.line
	var long []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err == nil && long == nil && !tooLong {
			line = chunk
			break
		}
		if !tooLong {
			if len(long)+len(chunk) > r.max+2 {
				tooLong, long = true, nil
			} else {
				long = append(long, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			r.eof = true
			if len(long) == 0 && !tooLong {
				return nil, no, false, io.EOF
			}
			break
		}
		if err != nil {
			return nil, no, false, err
		}
		break
	}
	if long != nil {
		line = long
	}
	r.line++
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return line, no, tooLong, nil
}

// stepLine consumes one line in line mode.
func (r *Reader) stepLine() error {
	line, no, tooLong, err := r.readLine()
	if err == io.EOF {
		if r.acc != nil {
			r.malformed(r.accLine, "unexpected end of input inside a JSON value")
			r.acc = nil
			return nil
		}
		return io.EOF
	}
	if err != nil {
		return err
	}
	if r.acc != nil {
		switch {
		case tooLong || len(r.acc)+len(line) > r.max:
			r.tooLarge(r.accLine)
			r.acc = nil
			return nil
		case len(line) > 0 && line[0] == '{':
			// A new object at column 0 while one is still open: the open
			// one was truncated (pretty-printed JSON indents nested objects).
			r.malformed(r.accLine, "incomplete JSON value")
			r.acc = nil
		default:
			r.continueValue(line)
			return nil
		}
	}
	if tooLong {
		r.tooLarge(no)
		return nil
	}
	r.startValue(line, no)
	return nil
}

// startValue handles a line that is not inside an open value.
func (r *Reader) startValue(line []byte, no int) {
	s, e := 0, len(line)
	for s < e && isSpace(line[s]) {
		s++
	}
	for e > s && isSpace(line[e-1]) {
		e--
	}
	t := line[s:e]
	switch {
	case len(t) == 0:
		return
	case t[0] != '{':
		r.malformed(no, "expected a JSON object, found %q", firstBytes(t))
		return
	case t[len(t)-1] == '}':
		r.emit(t, no) // the common NDJSON case; Parse validates the rest
		return
	}
	depth, state := scanDepth(t, 0)
	switch state {
	case scanBroken:
		r.malformed(no, "unterminated string or unbalanced brackets")
	case scanComplete:
		r.emit(t, no)
	default:
		r.acc = append(append(make([]byte, 0, 4096), t...), '\n')
		r.accLine, r.accDepth = no, depth
	}
}

// continueValue adds a line to the open value.
func (r *Reader) continueValue(line []byte) {
	depth, state := scanDepth(line, r.accDepth)
	r.acc = append(append(r.acc, line...), '\n')
	r.accDepth = depth
	switch state {
	case scanBroken:
		r.malformed(r.accLine, "unterminated string or unbalanced brackets")
		r.acc = nil
	case scanComplete:
		r.emit(r.acc, r.accLine)
		r.acc = nil
	}
}

const (
	scanOpen = iota
	scanComplete
	scanBroken
)

// scanDepth continues a bracket count over one line. Strings cannot span
// lines in JSON, so a line ending inside a string is broken.
func scanDepth(b []byte, depth int) (int, int) {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			if i = stringEnd(b, i+1); i < 0 {
				return depth, scanBroken
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return 0, scanComplete
			}
			if depth < 0 {
				return depth, scanBroken
			}
		}
	}
	return depth, scanOpen
}

func firstBytes(b []byte) []byte {
	if len(b) > 20 {
		return b[:20]
	}
	return b
}

// stepArray consumes one element (or separator problem) in array mode.
func (r *Reader) stepArray() error {
	if r.done {
		return io.EOF
	}
	c, err := r.peekNonSpace()
	if err == io.EOF {
		if r.arrOpen && !r.arrClosed {
			r.malformed(r.line, "unexpected end of input: array not closed")
			r.arrClosed = true
			return nil
		}
		return io.EOF
	}
	if err != nil {
		return err
	}
	switch {
	case !r.arrOpen || r.arrClosed:
		if c != '[' {
			// Trailing garbage after the array: report once, stop.
			r.malformed(r.line, "unexpected data after the array")
			r.arrOpen, r.arrClosed, r.done = true, true, true
			return nil
		}
		_, _ = r.br.Discard(1) // another array follows: read it too
		r.arrOpen, r.arrClosed, r.needSep = true, false, false
		return nil
	case c == ']':
		_, _ = r.br.Discard(1)
		r.arrClosed = true
		return nil
	case r.needSep:
		r.needSep = false
		if c == ',' {
			_, _ = r.br.Discard(1)
			return nil
		}
		r.malformed(r.line, "expected ',' or ']' after an array element")
		return nil // read on as if the comma were there
	case c == ',' || c == '}' || c == ':':
		_, _ = r.br.Discard(1)
		r.malformed(r.line, "unexpected %q in the array", c)
		return nil
	}
	line := r.line
	val, tooLong, err := r.readValue()
	if err != nil {
		return err
	}
	r.needSep = true
	switch {
	case tooLong:
		r.tooLarge(line)
	case val == nil:
		r.malformed(line, "unexpected end of input inside an array element")
		r.arrClosed = true
	default:
		r.emit(val, line)
	}
	return nil
}

// readValue reads one array element from the stream by counting brackets
// outside strings. It returns nil at end of input inside the element.
func (r *Reader) readValue() (val []byte, tooLong bool, err error) {
	r.val = r.val[:0]
	depth, inStr, esc := 0, false, false
	for {
		if _, err := r.br.Peek(1); err != nil {
			if err == io.EOF {
				return nil, false, nil
			}
			return nil, false, err
		}
		chunk, _ := r.br.Peek(r.br.Buffered())
		end := -1
	scan:
		for i, c := range chunk {
			if c == '\n' {
				r.line++
			}
			if inStr {
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
				}
				continue
			}
			switch c {
			case '"':
				inStr = true
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 { // end of a scalar element
					end = i
					break scan
				}
				depth--
				if depth == 0 {
					end = i + 1
					break scan
				}
			case ',', ' ', '\t', '\r', '\n':
				if depth == 0 {
					if c == '\n' {
						r.line-- // left unread; peekNonSpace counts it
					}
					end = i
					break scan
				}
			}
		}
		n := len(chunk)
		if end >= 0 {
			n = end
		}
		if !tooLong {
			if len(r.val)+n > r.max {
				tooLong, r.val = true, r.val[:0]
			} else {
				r.val = append(r.val, chunk[:n]...)
			}
		}
		_, _ = r.br.Discard(n)
		if end >= 0 {
			return r.val, tooLong, nil
		}
	}
}
