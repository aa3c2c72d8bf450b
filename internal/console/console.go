package console

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/client"
)

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Default session lifetimes.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the console.
type Config struct {
	// API is the native API's handler; every call the console makes is
	// served by it in process.
	API http.Handler
	// Logger receives sign-in outcomes (never a key) and internal errors.
	Logger *slog.Logger
	// Now is the clock of the sessions (time.Now when nil).
	Now func() time.Time
	// IdleTimeout and AbsoluteTimeout bound a session (the defaults when 0).
	IdleTimeout, AbsoluteTimeout time.Duration
	// BehindTLS marks the session cookie Secure and sends HSTS even on a
	// plain-HTTP request: set it when a proxy in front terminates TLS
	// (keyward serve sets it when --public-url is https).
	BehindTLS bool
}

// Console is the console's http.Handler.
type Console struct {
	api      http.RoundTripper
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	pages    map[string]*pageTemplate
	mux      *http.ServeMux
	handler  http.Handler
}

// New returns the console; mount it at Prefix.
func New(cfg Config) *Console {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.AbsoluteTimeout <= 0 {
		cfg.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	c := &Console{
		api:      inProcess{cfg.API},
		log:      cfg.Logger,
		now:      cfg.Now,
		sessions: newSessions(cfg.Now, cfg.IdleTimeout, cfg.AbsoluteTimeout, cfg.BehindTLS),
		pages:    parsePages(),
		mux:      http.NewServeMux(),
	}
	c.routes()
	cop := http.NewCrossOriginProtection()
	c.handler = securityHeaders(cop.Handler(c.mux), cfg.BehindTLS)
	return c
}

// ServeHTTP serves the console's pages.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

// Mount returns a handler sending /console/ (and /console) to the console
// and everything else to api.
func Mount(console http.Handler, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		if strings.HasPrefix(r.URL.Path, Prefix) {
			console.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows nothing but the console's own files: no
// inline script, no frames, forms only to itself.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(next http.Handler, behindTLS bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
			h.Set("Cache-Control", "no-store")
		}
		if r.TLS != nil || behindTLS {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// handler is a page's handler: it runs with a live session and the SDK
// client of the session's key.
type handler func(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(Prefix+"static/", http.FileServerFS(static))
	c.mux.Handle("GET "+Prefix+"static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	c.mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	c.mux.HandleFunc("POST "+Prefix+"login", c.login)
	c.mux.Handle("POST "+Prefix+"logout", c.page(c.logout))

	c.mux.Handle("GET "+Prefix+"{$}", c.page(c.overview))
	c.mux.Handle("GET "+Prefix+"machines", c.page(c.machines))
	c.mux.Handle("POST "+Prefix+"machines", c.page(c.createMachine))
	c.mux.Handle("GET "+Prefix+"machines/{id}", c.page(c.machine))
	c.mux.Handle("POST "+Prefix+"machines/{id}", c.page(c.updateMachine))
	c.mux.Handle("POST "+Prefix+"machines/{id}/delete", c.page(c.deleteMachine))
	c.mux.Handle("GET "+Prefix+"machines/{id}/secret", c.page(c.secretConfirm))
	c.mux.Handle("POST "+Prefix+"machines/{id}/secret", c.page(c.revealSecret))
	c.mux.Handle("POST "+Prefix+"machines/{id}/rotate", c.page(c.rotateSecret))
	c.mux.Handle("POST "+Prefix+"machines/{id}/scopes", c.page(c.addScope))
	c.mux.Handle("POST "+Prefix+"machines/{id}/scopes/{to}/delete", c.page(c.removeScope))
	c.mux.Handle("POST "+Prefix+"machines/{id}/m2m_tokens/{token}/revoke", c.page(c.revokeM2M))

	c.mux.Handle("GET "+Prefix+"api_keys", c.page(c.apiKeys))
	c.mux.Handle("POST "+Prefix+"api_keys", c.page(c.createAPIKey))
	c.mux.Handle("GET "+Prefix+"api_keys/{id}", c.page(c.apiKey))
	c.mux.Handle("POST "+Prefix+"api_keys/{id}", c.page(c.updateAPIKey))
	c.mux.Handle("POST "+Prefix+"api_keys/{id}/revoke", c.page(c.revokeAPIKey))

	c.mux.Handle("GET "+Prefix+"actor_tokens", c.page(c.actorTokens))
	c.mux.Handle("POST "+Prefix+"actor_tokens", c.page(c.createActorToken))
	c.mux.Handle("POST "+Prefix+"actor_tokens/{id}/revoke", c.page(c.revokeActorToken))
	c.mux.Handle("POST "+Prefix+"impersonation_sessions/revoke", c.page(c.revokeImpersonationSession))

	c.mux.Handle("GET "+Prefix+"audit", c.page(c.audit))

	c.mux.Handle("GET "+Prefix+"admin_keys", c.page(c.adminKeys))
	c.mux.Handle("POST "+Prefix+"admin_keys", c.page(c.createAdminKey))
	c.mux.Handle("GET "+Prefix+"admin_keys/{id}", c.page(c.adminKey))
	c.mux.Handle("POST "+Prefix+"admin_keys/{id}/revoke", c.page(c.revokeAdminKey))

	c.mux.Handle("GET "+Prefix+"organizations", c.page(c.organizations))
	c.mux.Handle("POST "+Prefix+"organizations", c.page(c.createOrganization))
	c.mux.Handle("GET "+Prefix+"organizations/{org}", c.page(c.organization))
	c.mux.Handle("POST "+Prefix+"organizations/{org}", c.page(c.updateOrganization))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/delete", c.page(c.deleteOrganization))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/sites", c.page(c.createSite))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/sites/{id}", c.page(c.renameSite))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/sites/{id}/delete", c.page(c.deleteSite))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/sitegroups", c.page(c.createSitegroup))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/sitegroups/{id}", c.page(c.updateSitegroup))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/sitegroups/{id}/delete", c.page(c.deleteSitegroup))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/tokens", c.page(c.createOrgToken))
	c.mux.Handle("GET "+Prefix+"organizations/{org}/tokens/{id}", c.page(c.orgToken))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/tokens/{id}", c.page(c.updateOrgToken))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/tokens/{id}/delete", c.page(c.deleteOrgToken))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/workspaces", c.page(c.createWorkspace))
	c.mux.Handle("GET "+Prefix+"organizations/{org}/workspaces/{ws}", c.page(c.workspace))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/workspaces/{ws}", c.page(c.updateWorkspace))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/workspaces/{ws}/members", c.page(c.putMember))
	c.mux.Handle("POST "+Prefix+"organizations/{org}/workspaces/{ws}/members/{user}/delete", c.page(c.removeMember))

	c.mux.Handle("GET "+Prefix+"users", c.page(c.user))
	c.mux.Handle("POST "+Prefix+"users/{user}/pats", c.page(c.createPAT))
	c.mux.Handle("GET "+Prefix+"users/{user}/pats/{id}", c.page(c.pat))
	c.mux.Handle("POST "+Prefix+"users/{user}/pats/{id}", c.page(c.updatePAT))
	c.mux.Handle("POST "+Prefix+"users/{user}/pats/{id}/revoke", c.page(c.revokePAT))
	c.mux.Handle("POST "+Prefix+"users/{user}/clients", c.page(c.createClient))
	c.mux.Handle("POST "+Prefix+"users/{user}/clients/{id}/delete", c.page(c.deleteClient))

	c.mux.Handle("GET "+Prefix+"webhooks", c.page(c.webhooks))
	c.mux.Handle("POST "+Prefix+"webhooks", c.page(c.createWebhook))
	c.mux.Handle("GET "+Prefix+"webhooks/{id}", c.page(c.webhook))
	c.mux.Handle("POST "+Prefix+"webhooks/{id}", c.page(c.updateWebhook))
	c.mux.Handle("POST "+Prefix+"webhooks/{id}/delete", c.page(c.deleteWebhook))
	c.mux.Handle("POST "+Prefix+"webhooks/{id}/rotate", c.page(c.rotateWebhookSecret))
	c.mux.Handle("POST "+Prefix+"webhooks/{id}/test", c.page(c.testWebhook))
	c.mux.Handle("POST "+Prefix+"webhooks/{id}/deliveries/{delivery}/replay", c.page(c.replayWebhookDelivery))

	c.mux.Handle("GET "+Prefix+"settings", c.page(c.settings))
	c.mux.Handle("POST "+Prefix+"settings", c.page(c.updateSettings))
	c.mux.Handle("POST "+Prefix+"settings/scopes", c.page(c.updateScopes))
	c.mux.Handle("POST "+Prefix+"settings/signing_keys/rotate", c.page(c.rotateSigningKey))
}

// page wraps a handler: it finds the session (else sends to sign-in),
// checks the CSRF token of a POST, and renders the error a handler returns.
func (c *Console) page(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.sessions.get(r)
		if s == nil {
			c.sessions.clearCookie(w, r)
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
				return
			}
			http.Error(w, "Your session has ended; sign in again.", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil || !s.checkCSRF(r.PostForm.Get("csrf")) {
				http.Error(w, "The form's CSRF token is missing or wrong; reload the page and try again.", http.StatusForbidden)
				return
			}
		}
		kw := c.clientFor(s)
		ctx := context.WithValue(r.Context(), originalKey{}, r)
		err := h(w, r.WithContext(ctx), s, kw)
		if err == nil {
			return
		}
		if errors.Is(err, client.ErrUnauthorized) {
			// The key was revoked or expired: the session is over.
			c.sessions.destroy(s)
			c.sessions.clearCookie(w, r)
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
				return
			}
		}
		c.renderError(w, r, s, err)
	})
}

// clientFor is the SDK client of the session's key, served in process.
func (c *Console) clientFor(s *session) *client.Client {
	return client.New("http://keyward.console", s.key,
		client.WithHTTPClient(&http.Client{Transport: c.api}),
		client.WithRetries(0), client.WithUserAgent("keyward-console"))
}

// statusOf is the status the console answers with for an API error.
func statusOf(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status >= 400 {
		return ae.Status
	}
	var fe formError
	if errors.As(err, &fe) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// messageOf is what the page says about err: the API's own message (which
// never holds a secret), or a generic one.
func messageOf(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		if ae.Status == http.StatusForbidden {
			return "The server refused: " + ae.Message
		}
		if ae.Message != "" {
			return ae.Message
		}
		return ae.Code
	}
	var fe formError
	if errors.As(err, &fe) {
		return string(fe)
	}
	return "Something went wrong; the server's log has the details."
}

// formError is a form the console itself finds wrong before calling the
// API.
type formError string

func (e formError) Error() string { return string(e) }

func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status := statusOf(err)
	if status >= 500 {
		c.log.Error("console page failed", "path", r.URL.Path, "error", err.Error())
	}
	c.render(w, r, s, status, "error.html", "Error", "", map[string]any{"Message": messageOf(err), "Status": status})
}
