package engine

import (
	"context"
	"fmt"
	"time"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/store"
)

// QuarantineEntry is input a sync source could not map or parse, kept with
// where it came from and why, for a person to look at.
type QuarantineEntry struct {
	Source string    `json:"source"`
	Key    string    `json:"key"` // primary key, page or file position
	Reason string    `json:"reason"`
	Data   []byte    `json:"data,omitempty"`
	Time   time.Time `json:"time"`
}

type quarantineRec struct {
	K string `json:"k"`
	R string `json:"r"`
	D []byte `json:"d,omitempty"`
	T int64  `json:"t"`
}

// quarantineKey is 'q' source 0x00 seq(8).
func quarantineKey(source string, seq uint64) []byte {
	k := append([]byte{store.PrefixQuarantine}, source...)
	k = append(k, 0)
	return store.AppendUint64(k, seq)
}

func quarantinePrefix(source string) []byte {
	return append(append([]byte{store.PrefixQuarantine}, source...), 0)
}

// Quarantine keeps one bad input of a source.
func (e *Engine) Quarantine(ctx context.Context, source, key, reason string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	return e.db.Update(func(t *store.Txn) error {
		seq, err := getUint64(t, store.MetaKey("seq/quarantine"))
		if err != nil {
			return err
		}
		seq++
		b, err := json.Marshal(quarantineRec{K: key, R: reason, D: data, T: e.now().UnixNano()})
		if err != nil {
			return err
		}
		if err := t.Set(quarantineKey(source, seq), b); err != nil {
			return err
		}
		return t.Set(store.MetaKey("seq/quarantine"), putUint64(seq))
	})
}

// Quarantined lists a source's quarantined inputs, oldest first, up to
// limit (0 for all). An empty source lists every source.
func (e *Engine) Quarantined(ctx context.Context, source string, limit int) ([]QuarantineEntry, error) {
	prefix := []byte{store.PrefixQuarantine}
	if source != "" {
		prefix = quarantinePrefix(source)
	}
	out := []QuarantineEntry{}
	err := e.db.View(func(t *store.Txn) error {
		return t.Iterate(prefix, store.IterOptions{}, func(k, v []byte) error {
			var r quarantineRec
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("quarantine record %x: %w", k, err)
			}
			src := string(k[1 : len(k)-9])
			out = append(out, QuarantineEntry{Source: src, Key: r.K, Reason: r.R, Data: r.D, Time: unixTime(r.T)})
			if limit > 0 && len(out) >= limit {
				return store.ErrStop
			}
			return ctx.Err()
		})
	})
	return out, err
}
