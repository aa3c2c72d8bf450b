// Package auditlog writes audit events as JSON lines, one event per line,
// as Vault's file audit device does: the --audit-log file (or stdout). It
// implements authority.AuditSink. Events never hold a secret, so neither
// does the log.
package auditlog

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

var _ authority.AuditSink = (*Writer)(nil)

// Writer writes one JSON line per event to an io.Writer; concurrent
// writes never interleave.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	c   io.Closer // nil for stdout
	buf []byte
}

// New writes to w.
func New(w io.Writer) *Writer { return &Writer{w: w} }

// Open appends to the file at path (created with mode 0600), or writes to
// stdout when path is "-".
func Open(path string) (*Writer, error) {
	if path == "-" {
		return New(os.Stdout), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &Writer{w: f, c: f}, nil
}

// Close closes the file (not stdout).
func (l *Writer) Close() error {
	if l.c == nil {
		return nil
	}
	return l.c.Close()
}

// Line is the JSON form of one event in the log.
type Line struct {
	Time         string          `json:"time"`
	ID           string          `json:"id"`
	InstanceID   string          `json:"instance_id"`
	Seq          int64           `json:"seq"`
	Action       string          `json:"action"`
	Outcome      string          `json:"outcome"`
	Actor        Ref             `json:"actor"`
	CredentialID string          `json:"credential_id,omitempty"`
	Target       Ref             `json:"target"`
	ClientIP     string          `json:"client_ip,omitempty"`
	RequestID    string          `json:"request_id,omitempty"`
	Count        int             `json:"count"`
	Detail       json.RawMessage `json:"detail"`
	PrevHash     string          `json:"prev_hash"`
	Hash         string          `json:"hash"`
}

// Ref names an actor or a target.
type Ref struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// WriteAuditEvent writes e as one line. The line reaches the writer in one
// Write call, so an O_APPEND file shared by several processes keeps whole lines.
func (l *Writer) WriteAuditEvent(e credential.AuditEvent) error {
	detail := e.Detail
	if len(detail) == 0 {
		detail = json.RawMessage("{}")
	}
	b, err := json.Marshal(Line{
		Time: e.At.UTC().Format(time.RFC3339Nano), ID: e.ID, InstanceID: e.InstanceID, Seq: e.Seq,
		Action: e.Action, Outcome: e.Outcome, Actor: Ref{Kind: e.ActorKind, ID: e.ActorID},
		CredentialID: e.CredentialID, Target: Ref{Kind: e.TargetKind, ID: e.TargetID},
		ClientIP: e.ClientIP, RequestID: e.RequestID, Count: e.Count, Detail: detail,
		PrevHash: e.PrevHash, Hash: e.Hash,
	})
	if err != nil {
		return fmt.Errorf("encode audit log line: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(append(l.buf[:0], b...), '\n')
	if _, err := l.w.Write(l.buf); err != nil {
		return fmt.Errorf("write audit log: %w", err)
	}
	return nil
}
