package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	badger "github.com/dgraph-io/badger/v4"
)

// RewriteStats reports what a Rewrite did.
type RewriteStats struct {
	Keys        int64 `json:"keys"`         // live keys copied
	BytesBefore int64 `json:"bytes_before"` // size of the dir's files before
	BytesAfter  int64 `json:"bytes_after"`  // and after
}

// Rewrite copies the live, latest version of every key of the closed
// Badger database in dir into a fresh database, syncs it to disk, and
// swaps it in place of the old one, which is then removed.
//
// This is how Loupe makes deletion physical. Badger's Delete only writes a
// tombstone: the old value stays in .sst (and .vlog) files until a
// compaction happens to rewrite those tables, which may be never; Flatten
// does nothing when the tables already sit on one level, and DropPrefix
// silently skips prefixes that hold only tombstones. A fresh database built
// from a snapshot of live keys holds no deleted byte at all: the old files
// are unlinked. The new database is encrypted with opts.EncryptionKey (it
// must be the key the old one uses).
//
// The swap is two renames: dir -> dir.old, dir.rewrite -> dir. A crash
// between them is repaired by RecoverRewrite (Rewrite calls it first).
func Rewrite(ctx context.Context, dir string, opts Options) (RewriteStats, error) {
	var st RewriteStats
	if err := RecoverRewrite(dir); err != nil {
		return st, err
	}
	tmp, old := dir+".rewrite", dir+".old"
	if err := os.RemoveAll(tmp); err != nil {
		return st, fmt.Errorf("rewrite: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return st, fmt.Errorf("rewrite: %w", err)
	}
	var err error
	if st.BytesBefore, err = dirSize(dir); err != nil {
		return st, fmt.Errorf("rewrite: %w", err)
	}
	src, err := badger.Open(badgerOptions(dir, opts))
	if err != nil {
		return st, fmt.Errorf("rewrite: %w", classifyOpenError(dir, err))
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		src.Close()
		return st, fmt.Errorf("rewrite: %w", err)
	}
	dst, err := badger.Open(badgerOptions(tmp, opts))
	if err != nil {
		src.Close()
		return st, fmt.Errorf("rewrite: open new store: %w", err)
	}
	copyErr := copyLive(ctx, src, dst)
	if copyErr == nil {
		copyErr = dst.View(func(t *badger.Txn) error {
			io := badger.DefaultIteratorOptions
			io.PrefetchValues = false
			it := t.NewIterator(io)
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				st.Keys++
			}
			return nil
		})
	}
	errs := []error{copyErr, dst.Close(), src.Close()}
	if err := errors.Join(errs...); err != nil {
		os.RemoveAll(tmp)
		return st, fmt.Errorf("rewrite %s: %w", dir, err)
	}
	if err := syncTree(tmp); err != nil {
		os.RemoveAll(tmp)
		return st, fmt.Errorf("rewrite: sync new store: %w", err)
	}
	// The marker says the new store is complete; RecoverRewrite trusts it.
	if err := writeSynced(filepath.Join(tmp, rewriteDone), nil); err != nil {
		os.RemoveAll(tmp)
		return st, fmt.Errorf("rewrite: %w", err)
	}
	if err := ctx.Err(); err != nil {
		os.RemoveAll(tmp)
		return st, err
	}
	if err := os.Rename(dir, old); err != nil {
		os.RemoveAll(tmp)
		return st, fmt.Errorf("rewrite: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return st, fmt.Errorf("rewrite: swap in new store (run again to recover): %w", err)
	}
	os.Remove(filepath.Join(dir, rewriteDone))
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return st, fmt.Errorf("rewrite: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return st, fmt.Errorf("rewrite: remove old store %s: %w", old, err)
	}
	st.BytesAfter, _ = dirSize(dir)
	return st, nil
}

const rewriteDone = "LOUPE-REWRITE-COMPLETE"

// RecoverRewrite finishes or undoes a Rewrite interrupted by a crash: a
// complete new store is swapped in, an incomplete one is dropped, and the
// old store comes back if it is the only one left.
func RecoverRewrite(dir string) error {
	tmp, old := dir+".rewrite", dir+".old"
	_, errDir := os.Stat(dir)
	_, errDone := os.Stat(filepath.Join(tmp, rewriteDone))
	_, errOld := os.Stat(old)
	switch {
	case errDir == nil:
		// The live dir is there; leftovers are garbage.
		if errOld == nil {
			if err := os.RemoveAll(old); err != nil {
				return fmt.Errorf("recover rewrite: %w", err)
			}
		}
		if _, err := os.Stat(tmp); err == nil {
			return os.RemoveAll(tmp)
		}
		return nil
	case errDone == nil:
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("recover rewrite: %w", err)
		}
		os.Remove(filepath.Join(dir, rewriteDone))
		return os.RemoveAll(old)
	case errOld == nil:
		os.RemoveAll(tmp)
		if err := os.Rename(old, dir); err != nil {
			return fmt.Errorf("recover rewrite: %w", err)
		}
	}
	return nil
}

// copyLive streams the latest live version of every key from src into the
// empty dst, writing tables directly.
func copyLive(ctx context.Context, src, dst *badger.DB) error {
	sw := dst.NewStreamWriter()
	if err := sw.Prepare(); err != nil {
		return err
	}
	stream := src.NewStream()
	stream.LogPrefix = "loupe.rewrite"
	stream.NumGo = 4
	stream.Send = sw.Write
	if err := stream.Orchestrate(ctx); err != nil {
		sw.Cancel()
		return err
	}
	return sw.Flush()
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}

func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
