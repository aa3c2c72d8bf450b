package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors; an *APIError matches the one for its status with
// errors.Is.
var (
	ErrInvalid      = errors.New("keyward: invalid request")       // 400, 413, 422
	ErrUnauthorized = errors.New("keyward: unauthorized")          // 401
	ErrForbidden    = errors.New("keyward: forbidden")             // 403
	ErrNotFound     = errors.New("keyward: not found")             // 404
	ErrConflict     = errors.New("keyward: conflict")              // 409
	ErrRateLimited  = errors.New("keyward: rate limited")          // 429
	ErrUnavailable  = errors.New("keyward: unavailable")           // network errors, 502, 503, 504
	ErrServer       = errors.New("keyward: internal server error") // other 5xx
)

// APIError is an error answer from keyward (or a failure to reach it, with
// Status 0 and Code "network_error"). It never holds a key or a token.
type APIError struct {
	Status    int    // the HTTP status; 0 when no answer came
	Code      string // keyward's error code, e.g. "not_found", "form_param_missing"
	Message   string
	Param     string // the offending parameter, when keyward names one
	RequestID string // keyward's request id, for its logs

	cause error
}

func (e *APIError) Error() string {
	s := "keyward: "
	if e.Status != 0 {
		s += fmt.Sprintf("%d ", e.Status)
	}
	s += e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Param != "" {
		s += " (param " + e.Param + ")"
	}
	if e.RequestID != "" {
		s += " [" + e.RequestID + "]"
	}
	return s
}

// Is maps the status to its sentinel error.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge || e.Status == http.StatusUnprocessableEntity
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Status == 0 || e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout
	case ErrServer:
		return e.Status >= 500 && e.Status != http.StatusBadGateway && e.Status != http.StatusServiceUnavailable && e.Status != http.StatusGatewayTimeout
	}
	return false
}

// Unwrap returns the transport error behind a network failure.
func (e *APIError) Unwrap() error { return e.cause }

// parseError reads keyward's native envelope
// {"error":{"code","message","param"},"request_id"}, or the OAuth one
// {"error":"…","error_description":"…"}.
func parseError(status int, header http.Header, body []byte) *APIError {
	e := &APIError{Status: status, RequestID: header.Get("X-Request-ID")}
	var env struct {
		Error     json.RawMessage `json:"error"`
		RequestID string          `json:"request_id"`
		Desc      string          `json:"error_description"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Error) > 0 {
		var native struct{ Code, Message, Param string }
		var code string
		if json.Unmarshal(env.Error, &native) == nil && native.Code != "" {
			e.Code, e.Message, e.Param = native.Code, native.Message, native.Param
		} else if json.Unmarshal(env.Error, &code) == nil {
			e.Code, e.Message = code, env.Desc
		}
		if env.RequestID != "" {
			e.RequestID = env.RequestID
		}
	}
	if e.Code == "" {
		e.Code = "http_" + fmt.Sprint(status)
		e.Message = http.StatusText(status)
	}
	return e
}
