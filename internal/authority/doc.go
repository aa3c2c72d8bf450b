// Package authority is keyward's core and its security boundary: every use
// case (issue, authenticate, rotate, scope, revoke, audit) and every rule
// about who may do what lives here, once. Surfaces decode their vendor's
// request, call the authority, and render its answer; adapters implement
// the ports declared in ports.go.
//
// A use case enters through the permission table (enter, permissions.go),
// which hands it a grant: the caller, the use case and its one instant.
// Every mutation then runs through grant.mutate (mutation.go): one store
// transaction with its audit event, so a change and its record commit or
// fail as one, and the cache invalidations it names published after the
// commit. A test keeps every other write transaction to the listed
// housekeeping (the janitor, last-used flushes, refusal records).
package authority
