// Package console is keyward's admin console: server-rendered HTML pages
// at /console/ for the people who run keyward.
//
// The console holds no authority of its own. It signs an operator in with
// an admin key and keeps that key in a server-side session; every page
// then calls the native API through the public Go SDK (package client)
// with the session's key, over an in-process transport that hands each
// request to the API's own http.Handler (no network). So every permission
// check, every audit event and every throttle is the server's own: the
// pages show or hide buttons after the key's permissions, and the API
// refuses whatever the key may not do, whatever a page showed.
//
// Sessions live in this process's memory: they are per node, and a
// restart signs everyone out. A session ends after an idle timeout, after
// an absolute timeout, on sign-out, or when the API stops accepting its
// key (revoked, expired).
//
// Every response carries a strict Content-Security-Policy (no inline
// script), X-Frame-Options: DENY, nosniff, no referrer and no-store; every
// form carries the session's CSRF token, checked in constant time on every
// POST, and cross-origin POSTs are refused besides (http.CrossOriginProtection).
// A secret (a machine key, an admin key, an API key, an org token, a PAT,
// an actor token) appears only in the
// response to the POST that created or revealed it, never in a URL, a
// log line or a list page.
//
// Pages render with JavaScript off; the one small script (static/console.js)
// adds copy buttons and confirmations.
package console
