package main

import (
	"errors"
	"strings"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/store"
)

// Exit codes, documented in README.md.
const (
	ExitOK       = 0 // success
	ExitFailure  = 1 // the command failed (or `verify` found a break)
	ExitUsage    = 2 // bad flags, arguments or rule syntax
	ExitRejected = 3 // ingest finished but rejected some input lines
	ExitNotFound = 4 // the REF or name given matches nothing
	ExitDataDir  = 5 // the data dir is locked, encrypted with another key, or too new
)

// exitError carries an exit code; a nil err prints nothing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return "exit status"
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

func exitCodeFor(err error) int {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return ExitNotFound
	case errors.Is(err, engine.ErrBadRef):
		return ExitUsage
	case errors.Is(err, store.ErrLocked), errors.Is(err, store.ErrEncryptionKey), errors.Is(err, store.ErrNewerSchema):
		return ExitDataDir
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "accepts ") ||
		strings.HasPrefix(msg, "invalid argument") || strings.Contains(msg, "requires at least") ||
		strings.HasPrefix(msg, "required flag") || strings.HasPrefix(msg, "flag needs an argument") {
		return ExitUsage
	}
	return ExitFailure
}
