package engine

import (
	"context"
	"errors"
)

// snapshotIndex serves sorted and filtered profile lists from the rules
// snapshot.
func (e *Engine) snapshotIndex(ctx context.Context, q ProfileQuery) (*ProfileIndex, error) {
	return nil, errors.New("profile lists by first seen, by events or by rule need the rules snapshot (not built yet)")
}
