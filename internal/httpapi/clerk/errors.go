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

// clerkError is how Clerk answers one of keyward's codes: the status,
// the error's code and its short message.
type clerkError struct {
	status  int
	code    string
	message string
}

// errorTable maps keyward's codes to Clerk's, in one place.
var errorTable = map[credential.Code]clerkError{
	credential.CodeMalformed:        {http.StatusBadRequest, "request_body_invalid", "Request body invalid"},
	credential.CodeMissing:          {http.StatusUnprocessableEntity, "form_param_missing", "is missing"},
	credential.CodeInvalid:          {http.StatusUnprocessableEntity, "form_param_value_invalid", "is invalid"},
	credential.CodeWrongType:        {http.StatusUnprocessableEntity, "form_param_type_invalid", "is of the wrong type"},
	credential.CodeUnknownParam:     {http.StatusUnprocessableEntity, "form_param_unknown", "is unknown"},
	credential.CodeTooLong:          {http.StatusUnprocessableEntity, "form_param_max_length_exceeded", "is too long"},
	credential.CodeTooMany:          {http.StatusUnprocessableEntity, "form_param_array_size_exceeded", "has too many items"},
	credential.CodeConstraint:       {http.StatusBadRequest, "form_param_value_invalid", "is invalid"},
	credential.CodeReserved:         {http.StatusBadRequest, "machine_token_reserved_claim", "Reserved claim"},
	credential.CodeTooLarge:         {http.StatusRequestEntityTooLarge, "request_body_too_large", "Request body too large"},
	credential.CodeMethodNotAllowed: {http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed"},
	credential.CodeNotFound:         {http.StatusNotFound, "resource_not_found", "not found"},
	credential.CodeConflict:         {http.StatusConflict, "conflict", "conflict"},
	credential.CodeUnauthenticated:  {http.StatusUnauthorized, "authentication_invalid", "Invalid authentication"},
	credential.CodeForbidden:        {http.StatusForbidden, "authorization_invalid", "Unauthorized request"},
	credential.CodeRateLimited:      {http.StatusTooManyRequests, "too_many_requests", "Too many requests"},
	credential.CodeUnavailable:      {http.StatusServiceUnavailable, "service_unavailable", "Service unavailable"},
	credential.CodeInternal:         {http.StatusInternalServerError, "internal_clerk_error", "Oops, an unexpected error occurred"},
}

// writeError renders err in Clerk's envelope. Internal causes are logged,
// never sent.
func (s *surface) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := credential.AsError(err)
	t, ok := errorTable[e.Code]
	if !ok {
		t = errorTable[credential.CodeInternal]
	}
	status, message := t.status, t.message
	item := errorItem{Code: t.code, Message: message, LongMessage: e.Message}
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
