// Package httpapi is keyward's HTTP front door: the router that mounts every
// vendor surface and the native API, and the middleware every request passes
// through (request ids, body limits, panic recovery, access logs that never
// hold a secret, a header or a body).
package httpapi
