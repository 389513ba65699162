package demo

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPlainPrefix checks the eight-bytes-at-a-time scan against the plain
// rule, with every byte value at every position of strings long enough to
// take the fast loop and its tail, and appendString's output against what
// it encodes.
func TestPlainPrefix(t *testing.T) {
	want := func(s string) int {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
				return i
			}
		}
		return len(s)
	}
	for n := 0; n <= 19; n++ {
		base := []byte(strings.Repeat("a~ Z0", 4)[:n])
		if got := plainPrefix(string(base)); got != n {
			t.Fatalf("plain %q: %d", base, got)
		}
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				s := append([]byte(nil), base...)
				s[pos] = byte(c)
				if got, w := plainPrefix(string(s)), want(string(s)); got != w {
					t.Fatalf("plainPrefix(%q) = %d, want %d", s, got, w)
				}
			}
		}
	}
	for _, s := range []string{"Mozilla/5.0 (X11; Linux x86_64) \"quoted\" back\\slash", "tab\there\nnew", "é ünïcode 💡", "bad \xff byte", ""} {
		var back string
		if err := json.Unmarshal(appendString(nil, s), &back); err != nil {
			t.Fatalf("appendString(%q) is not JSON: %v", s, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Errorf("appendString(%q) decodes to %q", s, back)
		}
	}
}
