// Package credential is keyward's vocabulary: the kinds of credential it
// issues, the shape of their secrets and identifiers, the entities the
// authority manages, and the one error type every layer speaks.
//
// It is pure: no I/O beyond crypto/rand, no knowledge of HTTP or SQL. Every
// other package imports it; it imports none of them.
package credential
