package store

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Txn) error {
		return tx.Set(MetaKey("schema"), binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("open newer schema: %v", err)
	}
}

func TestOlderSchemaReportedUntilMigrated(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if db.Schema() != SchemaVersion {
		t.Fatalf("new dir has schema %d, want %d", db.Schema(), SchemaVersion)
	}
	if err := db.Update(func(tx *Txn) error {
		return tx.Set(MetaKey("schema"), binary.BigEndian.AppendUint32(nil, SchemaVersion-1))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if db.Schema() != SchemaVersion-1 {
		t.Fatalf("older dir reports schema %d, want %d", db.Schema(), SchemaVersion-1)
	}
	if err := db.SetSchemaCurrent(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Schema() != SchemaVersion {
		t.Fatalf("after SetSchemaCurrent: schema %d, want %d", db.Schema(), SchemaVersion)
	}
}

func TestIterateReverseSeekAndKeysOnly(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Update(func(tx *Txn) error {
		for i := uint64(1); i <= 5; i++ {
			tx.Set(PIDKey(PrefixProfile, i), []byte{byte(i)})
		}
		return tx.Set(PIDKey(PrefixMerged, 1), nil) // another prefix must not leak in
	})
	var got []uint64
	db.View(func(tx *Txn) error {
		return tx.Iterate([]byte{PrefixProfile}, IterOptions{Reverse: true, KeysOnly: true}, func(k, v []byte) error {
			if v != nil {
				t.Errorf("keys-only scan returned a value")
			}
			got = append(got, Uint64(k, 1))
			if len(got) == 3 {
				return ErrStop
			}
			return nil
		})
	})
	if len(got) != 3 || got[0] != 5 || got[2] != 3 {
		t.Fatalf("reverse: %v", got)
	}
	got = nil
	db.View(func(tx *Txn) error {
		return tx.Iterate([]byte{PrefixProfile}, IterOptions{Seek: PIDKey(PrefixProfile, 4)}, func(k, _ []byte) error {
			got = append(got, Uint64(k, 1))
			return nil
		})
	})
	if len(got) != 2 || got[0] != 4 {
		t.Fatalf("seek: %v", got)
	}
}

func TestKeyRoundTrips(t *testing.T) {
	k := EventKey(42, -5, 7)
	pid, ns, seq, err := ParseEventKey(k)
	if err != nil || pid != 42 || ns != -5 || seq != 7 {
		t.Fatalf("event key: %d %d %d %v", pid, ns, seq, err)
	}
	if string(EventKey(1, -1, 0)) >= string(EventKey(1, 0, 0)) {
		t.Fatal("negative times must sort before positive")
	}
	a, b := IdentKey("email", "a@x"), IdentKey("user_id", "u\x00")
	x, y, err := ParseLinkKeyV1(LinkKeyV1(a, b))
	if err != nil || string(x) != string(a) || string(y) != string(b) {
		t.Fatal("link key round trip")
	}
	typ, val, err := ParseIdentKey(b)
	if err != nil || typ != "user_id" || val != "u\x00" {
		t.Fatalf("ident key: %q %q %v", typ, val, err)
	}
}

// A gc that crashed after moving the live store aside, before moving the
// rewritten one in, must not look like an empty store on the next open.
func TestOpenRecoversInterruptedRewrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "badger")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *Txn) error { return tx.Set(MetaKey("probe"), []byte("kept")) })
	db.Close()
	if err := os.Rename(dir, dir+".old"); err != nil { // the crash point
		t.Fatal(err)
	}
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []byte
	db.View(func(tx *Txn) error { got, _ = tx.Get(MetaKey("probe")); return nil })
	if string(got) != "kept" {
		t.Fatalf("after recovery the store reads %q", got)
	}
}
