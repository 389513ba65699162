package audit

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

func build(t *testing.T, n int) ([][]byte, []byte) {
	var out [][]byte
	var prev [32]byte
	for i := 1; i <= n; i++ {
		e := Entry{Seq: uint64(i), Time: int64(i), Actor: "ann", Action: Export, Profile: "p1", Detail: "x"}
		if i > 1 {
			e.Prev = hex.EncodeToString(prev[:])
		}
		b, h, err := Encode(&e)
		if err != nil {
			t.Fatal(err)
		}
		out, prev = append(out, b), h
	}
	head := binary.BigEndian.AppendUint64(nil, uint64(n))
	return out, append(head, prev[:]...)
}

func verify(entries [][]byte, head []byte) []Break {
	v := NewVerifier()
	for i, b := range entries {
		v.Add(uint64(i+1), b)
	}
	return v.Finish(head)
}

func TestChain(t *testing.T) {
	es, head := build(t, 5)
	if br := verify(es, head); len(br) != 0 {
		t.Fatalf("clean: %+v", br)
	}
	for _, k := range []int{0, 2, 4} {
		es, head := build(t, 5)
		i := strings.Index(string(es[k]), `"ann"`) + 1
		es[k][i] ^= 1
		br := verify(es, head)
		if len(br) != 1 || br[0].Entry != uint64(k+1) {
			t.Errorf("flip in entry %d: %+v", k+1, br)
		}
	}
	es, head = build(t, 5)
	if br := verify(es[:4], head); len(br) == 0 {
		t.Error("dropped last entry not noticed")
	}
	if br := verify(append(es[:1:1], es[2:]...), head); len(br) == 0 {
		t.Error("dropped middle entry not noticed")
	}
}

func TestCheck(t *testing.T) {
	if Check(Export, "p12") != nil || Check(Export, "") != nil {
		t.Error("valid entry refused")
	}
	if Check(Export, "email:ann@example.com") == nil {
		t.Error("identifier accepted as profile")
	}
	if Check("launch", "p1") == nil {
		t.Error("unknown action accepted")
	}
}
