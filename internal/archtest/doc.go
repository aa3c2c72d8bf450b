// Package archtest holds no code. Its test checks that the module's
// imports point the way the design (§2, Layout) draws them: surfaces → the
// authority → the domain, adapters implementing the authority's ports
// without importing each other, and only cmd wiring everything.
package archtest
