package inmem

// Len returns the number of keys l holds.
func Len(l *Limiter) int { return l.len() }
