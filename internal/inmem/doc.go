// Package inmem holds keyward's single-node, in-memory adapters: today the
// rate Limiter. They keep their state in process memory, so they suit one
// keyward process; a replicated deployment needs a shared store instead.
package inmem
