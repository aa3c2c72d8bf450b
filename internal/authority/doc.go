// Package authority is keyward's core and its security boundary: every use
// case (issue, authenticate, rotate, scope, revoke, audit) and every rule
// about who may do what lives here, once. Surfaces decode their vendor's
// request, call the authority, and render its answer; adapters implement
// the ports declared in ports.go.
//
// Every mutation runs in one store transaction together with its audit
// event, so a change and its record commit or fail as one.
package authority
