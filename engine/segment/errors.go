package segment

import (
	"errors"
	"fmt"
)

// ErrInvalidEvent matches every *ValidationError with errors.Is, for callers
// that only need to tell a bad message from an I/O failure.
var ErrInvalidEvent = errors.New("invalid segment message")

// ErrTooLarge is wrapped by Record.Err when one message exceeds MaxMessageSize.
var ErrTooLarge = errors.New("message exceeds the size limit")

// ErrMalformed is wrapped by Record.Err when the input cannot be split into
// messages at that point (a truncated line, unbalanced brackets, an array
// element that is not followed by ',' or ']').
var ErrMalformed = errors.New("malformed input")

// ValidationError reports why one message was rejected. Field is the
// top-level JSON field at fault, or "" when the message is not valid JSON
// or not an object.
type ValidationError struct {
	Field  string
	Reason string
}

// Error formats the error as `field "event": track without event name`.
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidEvent.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidEvent }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
