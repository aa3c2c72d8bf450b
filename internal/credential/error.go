package credential

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an Error. Each surface maps codes to its own status and
// envelope in one place; the code, not the message, is the contract.
type Code string

const (
	// Request shape and values.
	CodeMalformed        Code = "malformed"          // the body is not parseable (bad JSON, bad UTF-8)
	CodeMissing          Code = "missing"            // a required parameter is absent or empty
	CodeInvalid          Code = "invalid"            // a parameter's value is outside its domain
	CodeWrongType        Code = "wrong_type"         // a parameter has the wrong JSON type
	CodeUnknownParam     Code = "unknown_param"      // a parameter the operation does not take
	CodeTooLong          Code = "too_long"           // a string above its maximum length
	CodeTooMany          Code = "too_many"           // an array above its maximum size
	CodeTooLarge         Code = "too_large"          // the request body exceeds the limit
	CodeConstraint       Code = "constraint"         // parameters that cannot be satisfied together
	CodeReserved         Code = "reserved"           // a name reserved by keyward (e.g. a JWT claim)
	CodeMethodNotAllowed Code = "method_not_allowed" // the path exists, but not for this method

	// Outcomes.
	CodeNotFound        Code = "not_found"
	CodeConflict        Code = "conflict"
	CodeUnauthenticated Code = "unauthenticated"
	CodeForbidden       Code = "forbidden"
	CodeRateLimited     Code = "rate_limited"
	CodeUnavailable     Code = "unavailable" // the store is busy or unreachable; retry later
	CodeInternal        Code = "internal"
)

// Codes lists every Code, so that each surface's table can be checked to
// map them all (a test keeps the list complete).
func Codes() []Code {
	return []Code{
		CodeMalformed, CodeMissing, CodeInvalid, CodeWrongType, CodeUnknownParam, CodeTooLong, CodeTooMany,
		CodeTooLarge, CodeConstraint, CodeReserved, CodeMethodNotAllowed,
		CodeNotFound, CodeConflict, CodeUnauthenticated, CodeForbidden, CodeRateLimited, CodeUnavailable, CodeInternal,
	}
}

// Error is the one error type of keyward. Param names the offending request
// parameter, when there is one, in the surface's own spelling.
type Error struct {
	Code    Code
	Message string
	Param   string
	// Reason, when set, is a finer machine-readable cause within Code
	// (such as ticket_expired) for surfaces that distinguish it.
	Reason string
	Err    error // the cause, never shown to callers
	// RetryAfter, for CodeRateLimited, is how long the caller should wait;
	// surfaces send it as Retry-After (whole seconds, rounded up).
	RetryAfter time.Duration
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1.
func (e *Error) RetryAfterSeconds() int64 {
	s := int64((e.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Param != "" {
		msg = e.Param + ": " + msg
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ParamError returns an Error about one request parameter.
func ParamError(code Code, param, message string) *Error {
	return &Error{Code: code, Message: message, Param: param}
}

// Wrap returns an Error of the given code that keeps err as its cause.
func Wrap(code Code, err error, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// CodeOf returns the code of the first Error in err's chain, or CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code Code) bool {
	return err != nil && CodeOf(err) == code
}

// AsError returns the first Error in err's chain, or an internal Error that
// wraps err, so surfaces can always render a code and a message.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}
