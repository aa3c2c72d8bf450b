package inmem

// Len returns the number of keys l holds.
func Len(l *Limiter) int { return l.len() }

// NamedLen returns the number of named-limit counters l holds.
func NamedLen(l *Limiter) int { return l.namedLen() }
