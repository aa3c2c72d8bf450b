package console

import (
	"bytes"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// pageTemplate is one page: the layout and the page's own file.
type pageTemplate struct{ t *template.Template }

var funcs = template.FuncMap{
	// seg escapes a value placed in a URL path: html/template only
	// normalises paths, and an id holding "/" or ".." (user ids may)
	// would otherwise point a form at another route.
	"seg":       url.PathEscape,
	"when":      when,
	"short":     func(s string, n int) string { return s[:min(len(s), n)] },
	"join":      strings.Join,
	"hasString": slices.Contains[[]string],
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"pretty": func(raw json.RawMessage) string {
		if len(raw) == 0 || string(raw) == "null" {
			return ""
		}
		var b bytes.Buffer
		if json.Indent(&b, raw, "", "  ") != nil {
			return string(raw)
		}
		return b.String()
	},
}

// when renders a time (or a *time.Time, nil as "never") in UTC.
func when(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return "never"
		}
		t = *x
	default:
		return ""
	}
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func parsePages() map[string]*pageTemplate {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*pageTemplate{}
	for _, name := range names {
		base := strings.TrimPrefix(name, "templates/")
		if base == "layout.html" || base == "partials.html" {
			continue
		}
		t := template.Must(template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", name))
		pages[base] = &pageTemplate{t}
	}
	return pages
}

// view is what every page's template gets.
type view struct {
	Title string
	Nav   string // the menu entry to mark current
	S     *session
	Flash string
	Data  any
}

// CSRF is the session's token for the page's forms.
func (v view) CSRF() string {
	if v.S == nil {
		return ""
	}
	return v.S.csrf
}

// Can reports whether the session's key holds perm.
func (v view) Can(perm string) bool { return v.S != nil && v.S.Can(perm) }

// Who names the signed-in key.
func (v view) Who() string {
	if v.S == nil {
		return ""
	}
	return v.S.caller.CredentialID
}

// render writes page with data, with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, page, title, nav string, data any) {
	p, ok := c.pages[page]
	if !ok {
		panic("console: no page " + page)
	}
	v := view{Title: title, Nav: nav, S: s, Data: data}
	if s != nil {
		v.Flash = s.takeFlash()
	}
	var b bytes.Buffer
	if err := p.t.ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.Error("console template failed", "page", page, "error", err.Error())
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// ok renders a page with 200.
func (c *Console) ok(w http.ResponseWriter, r *http.Request, s *session, page, title, nav string, data any) error {
	c.render(w, r, s, http.StatusOK, page, title, nav, data)
	return nil
}

// done ends a POST: it keeps msg for the next page and sees to url (POST,
// redirect, GET).
func done(w http.ResponseWriter, r *http.Request, s *session, url, msg string) error {
	s.setFlash(msg)
	http.Redirect(w, r, url, http.StatusSeeOther)
	return nil
}
