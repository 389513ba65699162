package store

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// filesContaining lists the files under dir whose bytes contain needle.
func filesContaining(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

func fill(t *testing.T, db *DB, n int, secret string) {
	t.Helper()
	for i := 0; i < n; i += 1000 {
		err := db.Update(func(tx *Txn) error {
			for j := i; j < i+1000 && j < n; j++ {
				v := bytes.Repeat([]byte{byte('a' + j%26)}, 200)
				if j%97 == 0 {
					v = append(v, fmt.Sprintf("%s-%d", secret, j)...)
				}
				if err := tx.Set(PIDKey(PrefixProfile, uint64(j)), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRewriteRemovesDeletedBytes(t *testing.T) {
	for _, key := range [][]byte{nil, bytes.Repeat([]byte{7}, 32)} {
		t.Run(fmt.Sprintf("key=%d", len(key)), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "badger")
			opts := Options{EncryptionKey: key, MemTableSize: 8 << 20}
			db, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			const secret = "ann.secret@example.com"
			fill(t, db, 20000, "keep")
			// The subject's records, flushed to tables, then deleted.
			err = db.Update(func(tx *Txn) error {
				for i := 0; i < 50; i++ {
					if err := tx.Set(PIDSeqKey(PrefixEvent, 999999, uint64(i)), []byte(secret+" event "+fmt.Sprint(i))); err != nil {
						return err
					}
				}
				return tx.Set(IdentityKey("email", secret), AppendUint64(nil, 999999))
			})
			if err != nil {
				t.Fatal(err)
			}
			fill(t, db, 60000, "more") // push the subject into .sst files
			err = db.Update(func(tx *Txn) error {
				for i := 0; i < 50; i++ {
					if err := tx.Delete(PIDSeqKey(PrefixEvent, 999999, uint64(i))); err != nil {
						return err
					}
				}
				return tx.Delete(IdentityKey("email", secret))
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if key == nil {
				// What the README explains: a tombstone leaves the bytes.
				t.Logf("after Delete+Close, files holding the deleted value: %v", filesContaining(t, dir, []byte(secret)))
			}

			st, err := Rewrite(context.Background(), dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			if hits := filesContaining(t, filepath.Dir(dir), []byte(secret)); len(hits) != 0 {
				t.Fatalf("deleted value still on disk after Rewrite: %v", hits)
			}
			if _, err := os.Stat(dir + ".old"); !os.IsNotExist(err) {
				t.Errorf("old store left behind: %v", err)
			}
			if st.Keys < 60001 || st.BytesAfter == 0 {
				t.Errorf("stats %+v", st)
			}
			db, err = Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.View(func(tx *Txn) error {
				v, err := tx.Get(PIDKey(PrefixProfile, 97))
				if err != nil {
					return err
				}
				if !bytes.Contains(v, []byte("more-97")) {
					t.Errorf("latest version not kept: %q", v[len(v)-10:])
				}
				if ok, _ := tx.Has(IdentityKey("email", secret)); ok {
					t.Error("deleted key is back")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := db.Count(context.Background(), []byte{PrefixProfile}); n != 60000 {
				t.Errorf("profiles after rewrite: %d", n)
			}
		})
	}
}

func TestRecoverRewrite(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "badger")
	mk := func(p, name string) {
		os.MkdirAll(p, 0o700)
		os.WriteFile(filepath.Join(p, name), []byte(name), 0o600)
	}
	// Crash after dir -> dir.old with a complete new store: swap it in.
	mk(dir+".old", "old")
	mk(dir+".rewrite", "new")
	os.WriteFile(filepath.Join(dir+".rewrite", rewriteDone), nil, 0o600)
	if err := RecoverRewrite(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err != nil {
		t.Errorf("complete new store not swapped in: %v", err)
	}
	if _, err := os.Stat(dir + ".old"); !os.IsNotExist(err) {
		t.Error("old left")
	}
	// Crash after dir -> dir.old with an incomplete new store: old comes back.
	os.RemoveAll(dir)
	mk(dir+".old", "old")
	mk(dir+".rewrite", "partial")
	if err := RecoverRewrite(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "old")); err != nil {
		t.Errorf("old store not restored: %v", err)
	}
	if _, err := os.Stat(dir + ".rewrite"); !os.IsNotExist(err) {
		t.Error("partial new store left")
	}
}
