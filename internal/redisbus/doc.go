// Package redisbus holds the Redis adapters that let several keyward nodes
// share state: a fixed-window rate Limiter whose counts live in Redis, and
// a Bus that carries cache invalidations over Redis pub/sub. Open connects
// a client for the server's --redis-url.
//
// Neither adapter is a security authority. Revocation and every other
// security state live in the store; the Limiter falls back as its Policy
// says when Redis is unavailable, and the Bus reports a lost subscription
// so the caller can shorten cache lifetimes until it is back.
package redisbus
