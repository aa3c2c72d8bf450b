// Package wire holds what every surface needs to read and answer HTTP
// requests safely: the caller's bearer credential, a bounded body, and a strict JSON
// object decoder that reports which parameter is wrong and how, so each
// surface can render the error in its vendor's envelope.
package wire
