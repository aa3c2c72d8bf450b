package clerk

import (
	"log/slog"
	"net/http"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

type errorBody struct {
	Errors       []errorItem `json:"errors"`
	ClerkTraceID string      `json:"clerk_trace_id,omitempty"`
}

type errorItem struct {
	Code        string     `json:"code"`
	Message     string     `json:"message"`
	LongMessage string     `json:"long_message"`
	Meta        *errorMeta `json:"meta,omitempty"`
}

type errorMeta struct {
	ParamName string `json:"param_name,omitempty"`
}

// statusAndCode maps keyward's error codes to Clerk's, in one place.
func statusAndCode(c credential.Code) (int, string, string) {
	switch c {
	case credential.CodeMalformed:
		return http.StatusBadRequest, "request_body_invalid", "Request body invalid"
	case credential.CodeMissing:
		return http.StatusUnprocessableEntity, "form_param_missing", "is missing"
	case credential.CodeInvalid:
		return http.StatusUnprocessableEntity, "form_param_value_invalid", "is invalid"
	case credential.CodeWrongType:
		return http.StatusUnprocessableEntity, "form_param_type_invalid", "is of the wrong type"
	case credential.CodeUnknownParam:
		return http.StatusUnprocessableEntity, "form_param_unknown", "is unknown"
	case credential.CodeTooLong:
		return http.StatusUnprocessableEntity, "form_param_max_length_exceeded", "is too long"
	case credential.CodeTooMany:
		return http.StatusUnprocessableEntity, "form_param_array_size_exceeded", "has too many items"
	case credential.CodeConstraint:
		return http.StatusBadRequest, "form_param_value_invalid", "is invalid"
	case credential.CodeReserved:
		return http.StatusBadRequest, "machine_token_reserved_claim", "Reserved claim"
	case credential.CodeTooLarge:
		return http.StatusRequestEntityTooLarge, "request_body_too_large", "Request body too large"
	case credential.CodeNotFound:
		return http.StatusNotFound, "resource_not_found", "not found"
	case credential.CodeConflict:
		return http.StatusConflict, "conflict", "conflict"
	case credential.CodeUnauthenticated:
		return http.StatusUnauthorized, "authentication_invalid", "Invalid authentication"
	case credential.CodeForbidden:
		return http.StatusForbidden, "authorization_invalid", "Unauthorized request"
	case credential.CodeRateLimited:
		return http.StatusTooManyRequests, "too_many_requests", "Too many requests"
	case credential.CodeUnavailable:
		return http.StatusServiceUnavailable, "service_unavailable", "Service unavailable"
	}
	return http.StatusInternalServerError, "internal_clerk_error", "Oops, an unexpected error occurred"
}

// writeError renders err in Clerk's envelope. Internal causes are logged,
// never sent.
func (s *surface) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := credential.AsError(err)
	status, code, message := statusAndCode(e.Code)
	item := errorItem{Code: code, Message: message, LongMessage: e.Message}
	switch {
	case e.Code == credential.CodeReserved:
		item.Meta = &errorMeta{ParamName: e.Param}
	case e.Param != "":
		item.Meta = &errorMeta{ParamName: e.Param}
		item.LongMessage = e.Param + " " + e.Message
		if e.Code == credential.CodeMissing {
			item.LongMessage = e.Param + " must be included."
		}
	case status >= 500:
		item.LongMessage = message
		s.log.LogAttrs(r.Context(), slog.LevelError, "clerk request failed",
			slog.String("request_id", authority.RequestID(r.Context())), slog.String("error", err.Error()))
	case e.Code == credential.CodeUnauthenticated:
		item.LongMessage = "Unable to authenticate the request, you need to supply an active secret key"
	}
	wire.SetRetryAfter(w, e)
	wire.WriteJSON(w, status, errorBody{Errors: []errorItem{item}, ClerkTraceID: authority.RequestID(r.Context())})
}
