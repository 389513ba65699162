package common

import "github.com/loupe-cdp/loupe/engine"

// ValueCount is one value of a trait and how many profiles hold it.
type ValueCount = engine.ValueCount
