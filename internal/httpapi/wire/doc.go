// Package wire holds what every surface needs to read and answer HTTP
// requests safely: the caller's bearer credential, a bounded body, a strict JSON
// object decoder that reports which parameter is wrong and how, and the rule
// that every input is valid UTF-8 without NUL (CheckJSON, CheckRequest), so
// each surface can render the error in its vendor's envelope.
//
// A surface is a table and two functions (Surface): how it authenticates
// and how it writes an error. Its handlers return their errors (Handler),
// its adapters check, authenticate and render in one place, and its
// catch-all (Unrouted) answers an unknown path or a wrong method in its
// envelope.
package wire
