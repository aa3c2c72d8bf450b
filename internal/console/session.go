package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/client"
)

// cookieName is the session cookie's name.
const cookieName = "keyward_console"

// session is one signed-in operator. It lives in this process only.
type session struct {
	hash    [32]byte // SHA-256 of the cookie's id: the map key
	key     string   // the admin key; never rendered, logged or put in a URL
	caller  client.CallerInfo
	csrf    string
	created time.Time

	mu    sync.Mutex
	seen  time.Time
	flash string
}

// Can reports whether the session's key holds perm ("machines:read"); a
// family's write permission implies its read.
func (s *session) Can(perm string) bool {
	p := s.caller.Permissions
	if slices.Contains(p, client.PermissionAll) || slices.Contains(p, perm) {
		return true
	}
	if family, ok := strings.CutSuffix(perm, ":read"); ok {
		return slices.Contains(p, family+":write")
	}
	return false
}

func (s *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

// setFlash keeps a message for the next page; takeFlash reads and clears it.
func (s *session) setFlash(msg string) {
	s.mu.Lock()
	s.flash = msg
	s.mu.Unlock()
}

func (s *session) takeFlash() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := s.flash
	s.flash = ""
	return msg
}

// sessions is the in-memory session table of this node.
type sessions struct {
	now            func() time.Time
	idle, absolute time.Duration
	behindTLS      bool // cookies are Secure even on plain HTTP (TLS ends at a proxy)

	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessions(now func() time.Time, idle, absolute time.Duration, behindTLS bool) *sessions {
	return &sessions{now: now, idle: idle, absolute: absolute, behindTLS: behindTLS, m: map[[32]byte]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on a supported platform
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for key and sets its cookie.
func (ss *sessions) create(w http.ResponseWriter, r *http.Request, key string, caller client.CallerInfo) *session {
	id := randomToken()
	now := ss.now()
	s := &session{hash: sha256.Sum256([]byte(id)), key: key, caller: caller, csrf: randomToken(), created: now, seen: now}
	ss.mu.Lock()
	for h, old := range ss.m { // sweep the ended ones
		if ss.ended(old, now) {
			delete(ss.m, h)
		}
	}
	ss.m[s.hash] = s
	ss.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: Prefix, HttpOnly: true, Secure: r.TLS != nil || ss.behindTLS,
		SameSite: http.SameSiteStrictMode, MaxAge: int(ss.absolute / time.Second)})
	return s
}

func (ss *sessions) ended(s *session, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Sub(s.seen) >= ss.idle || now.Sub(s.created) >= ss.absolute
}

// get returns the request's live session and marks it used, or nil.
func (ss *sessions) get(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	h := sha256.Sum256([]byte(ck.Value))
	ss.mu.Lock()
	s := ss.m[h]
	ss.mu.Unlock()
	if s == nil {
		return nil
	}
	now := ss.now()
	if ss.ended(s, now) {
		ss.destroy(s)
		return nil
	}
	s.mu.Lock()
	s.seen = now
	s.mu.Unlock()
	return s
}

func (ss *sessions) destroy(s *session) {
	ss.mu.Lock()
	delete(ss.m, s.hash)
	ss.mu.Unlock()
}

// count is how many sessions are held (tests).
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

func (ss *sessions) clearCookie(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(cookieName); err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, HttpOnly: true, Secure: r.TLS != nil || ss.behindTLS,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}
