package layout

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234", 100000: "100,000"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d)=%q want %q", n, got, want)
		}
	}
}

func TestFit(t *testing.T) {
	out := Fit("abc\nlonger line here\n", 8, 4)
	lines := strings.Split(out, "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		if ansi.StringWidth(l) != 8 {
			t.Fatalf("line %q width %d", l, ansi.StringWidth(l))
		}
	}
}

func TestOverlay(t *testing.T) {
	base := Fit("", 10, 3)
	got := Overlay(base, "ab\ncd", 10, 3)
	for _, l := range strings.Split(got, "\n") {
		if ansi.StringWidth(l) != 10 {
			t.Fatalf("width %d: %q", ansi.StringWidth(l), l)
		}
	}
	if !strings.Contains(got, "    ab    ") {
		t.Fatalf("%q", got)
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{30 * time.Second: "now", 5 * time.Minute: "5m ago", 3 * time.Hour: "3h ago", 72 * time.Hour: "3d ago", 400 * 24 * time.Hour: "2024-04-27"} {
		if got := Ago(now.Add(-d), now); got != want {
			t.Errorf("Ago(-%v)=%q want %q", d, got, want)
		}
	}
}
