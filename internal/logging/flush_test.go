package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Access-log lines wait for the batch; any other line is written at once,
// after the lines batched before it.
func TestOnlyAccessLogLinesWaitForTheBatch(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			out := &syncBuf{}
			log, err := New(NewBuffered(out), format, slog.LevelInfo)
			if err != nil {
				t.Fatal(err)
			}
			log.Handler().(*handler).LogRequest(context.Background(), slog.LevelInfo, Request{ID: "req_1", Method: "GET", Route: "GET /x", Path: "/x", Status: 200, Took: time.Millisecond})
			if out.String() != "" {
				t.Fatalf("an access-log line was written before its batch: %q", out.String())
			}
			log.Warn("restart needed", "setting", "addr")
			got := out.String()
			first, second := strings.Index(got, "req_1"), strings.Index(got, "restart needed")
			if first < 0 || second < 0 || first > second {
				t.Fatalf("want the batched request line, then the warning, written at once; got %q", got)
			}
		})
	}
}
