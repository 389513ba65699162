package common

import (
	"context"
	"testing"
)

// A result from an older request is refused even when it arrives after
// the newer one, and starting a request cancels the previous one's context.
func TestLatestDropsStale(t *testing.T) {
	var l Latest
	ctx1, g1 := l.Start(context.Background())
	_, g2 := l.Start(context.Background())
	if ctx1.Err() == nil {
		t.Fatal("first request not cancelled")
	}
	if !l.Busy() {
		t.Fatal("not busy")
	}
	if !l.Accept(g2) {
		t.Fatal("latest refused")
	}
	if l.Accept(g1) {
		t.Fatal("stale accepted")
	}
	if l.Busy() {
		t.Fatal("still busy")
	}
	_, g3 := l.Start(context.Background())
	l.Cancel()
	if l.Accept(g3) {
		t.Fatal("cancelled request accepted")
	}
}
