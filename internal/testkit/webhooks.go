package testkit

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/authority"
)

// DeliverAllWebhooks runs a's dispatcher with s until nothing is due.
func DeliverAllWebhooks(t testing.TB, a *authority.Authority, s authority.WebhookSender) {
	t.Helper()
	for {
		n, err := a.DeliverWebhooks(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// SyncBuffer is a bytes.Buffer safe to write from one goroutine (a
// server, a child process's output) while a test reads it from another.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
