package keys

import (
	"strings"
	"testing"
)

func TestDefaultsDoNotCollide(t *testing.T) {
	if err := CheckCollisions("global", DefaultGlobal(), DefaultNav()); err != nil {
		t.Fatal(err)
	}
}

func TestRebindCollisionDetected(t *testing.T) {
	g, n := DefaultGlobal(), DefaultNav()
	if err := Rebind(map[string][]string{"quit": {"j"}}, g, n); err != nil {
		t.Fatal(err)
	}
	err := CheckCollisions("global", g, n)
	if err == nil || !strings.Contains(err.Error(), `"j" is bound to`) {
		t.Fatalf("want collision on j, got %v", err)
	}
}

func TestRebindMovesKey(t *testing.T) {
	g, n := DefaultGlobal(), DefaultNav()
	if err := Rebind(map[string][]string{"quit": {"x", "ctrl+q"}}, g, n); err != nil {
		t.Fatal(err)
	}
	if got := g.Quit.Keys(); len(got) != 2 || got[0] != "x" {
		t.Fatalf("keys %v", got)
	}
	if g.Quit.Help().Key != "x/ctrl+q" {
		t.Fatalf("help %q", g.Quit.Help().Key)
	}
	if err := CheckCollisions("global", g, n); err != nil {
		t.Fatal(err)
	}
}

func TestRebindUnknownAction(t *testing.T) {
	err := Rebind(map[string][]string{"qiut": {"x"}}, DefaultGlobal())
	if err == nil || !strings.Contains(err.Error(), "qiut") {
		t.Fatalf("got %v", err)
	}
}

func TestRebindEmptyDisables(t *testing.T) {
	g := DefaultGlobal()
	if err := Rebind(map[string][]string{"suspend": {}}, g); err != nil {
		t.Fatal(err)
	}
	if g.Suspend.Enabled() {
		t.Fatal("suspend still enabled")
	}
}
