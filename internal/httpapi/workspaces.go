package httpapi

import (
	"net/http"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Native workspaces, members and the scope catalogue (admin key).

type workspaceJSON struct {
	ID        string `json:"id"`
	OrgID     string `json:"org_id"`
	Slug      string `json:"slug"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

type memberJSON struct {
	WorkspaceID string `json:"workspace_id"`
	UserID      string `json:"user_id"`
	Role        string `json:"role"`
	CreatedAt   string `json:"created_at"`
	UpdatedAt   string `json:"updated_at"`
}

func toWorkspace(w credential.Workspace) workspaceJSON {
	return workspaceJSON{ID: w.ID, OrgID: w.OrgID, Slug: w.Slug, Name: w.Name, CreatedAt: rfc3339(w.CreatedAt), UpdatedAt: rfc3339(w.UpdatedAt)}
}

func toMember(m credential.Member) memberJSON {
	return memberJSON{WorkspaceID: m.WorkspaceID, UserID: m.UserID, Role: m.Role, CreatedAt: rfc3339(m.CreatedAt), UpdatedAt: rfc3339(m.UpdatedAt)}
}

func (n *native) registerWorkspaces(mux wire.Router) {
	const ws = "/v1/organizations/{org}/workspaces"
	routes := map[string]wire.Handler{
		"POST " + ws:                               n.createWorkspace,
		"GET " + ws:                                n.listWorkspaces,
		"GET " + ws + "/{ws}":                      n.getWorkspace,
		"PATCH " + ws + "/{ws}":                    n.updateWorkspace,
		"DELETE " + ws + "/{ws}":                   n.deleteWorkspace,
		"GET " + ws + "/{ws}/members":              n.listMembers,
		"GET " + ws + "/{ws}/members/{user_id}":    n.getMember,
		"PUT " + ws + "/{ws}/members/{user_id}":    n.putMember,
		"DELETE " + ws + "/{ws}/members/{user_id}": n.removeMember,
		"GET /v1/scopes":                           n.getScopes,
		"PUT /v1/scopes":                           n.putScopes,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, n.Authenticated(h))
	}
}

func (n *native) createWorkspace(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := orgInput(r)
	var ws credential.Workspace
	if err == nil {
		ws, err = n.auth.CreateWorkspace(r.Context(), c, r.PathValue("org"), authority.WorkspaceInput(in))
	}
	return respond(w, http.StatusCreated, toWorkspace(ws), err)
}

func (n *native) listWorkspaces(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	var list []credential.Workspace
	if err == nil {
		list, err = n.auth.ListWorkspaces(r.Context(), c, r.PathValue("org"))
	}
	items, next := pageOf(list, p)
	return respond(w, http.StatusOK, mapPage(items, next, toWorkspace), err)
}

func (n *native) getWorkspace(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	ws, err := n.auth.GetWorkspace(r.Context(), c, r.PathValue("org"), r.PathValue("ws"))
	return respond(w, http.StatusOK, toWorkspace(ws), err)
}

func (n *native) updateWorkspace(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := orgInput(r)
	var ws credential.Workspace
	if err == nil {
		ws, err = n.auth.UpdateWorkspace(r.Context(), c, r.PathValue("org"), r.PathValue("ws"), authority.WorkspaceInput(in))
	}
	return respond(w, http.StatusOK, toWorkspace(ws), err)
}

func (n *native) deleteWorkspace(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	return respond(w, 0, nil, n.auth.DeleteWorkspace(r.Context(), c, r.PathValue("org"), r.PathValue("ws")))
}

func (n *native) listMembers(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	var list []credential.Member
	if err == nil {
		list, err = n.auth.ListMembers(r.Context(), c, r.PathValue("org"), r.PathValue("ws"))
	}
	items, next := pageOf(list, p)
	return respond(w, http.StatusOK, mapPage(items, next, toMember), err)
}

func (n *native) getMember(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	m, err := n.auth.GetMember(r.Context(), c, r.PathValue("org"), r.PathValue("ws"), r.PathValue("user_id"))
	return respond(w, http.StatusOK, toMember(m), err)
}

// putMember adds a member or changes their role: {"role": "owner|admin|member"}.
func (n *native) putMember(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "role")
	var role *string
	if err == nil {
		role, err = f.String("role")
	}
	if err == nil && role == nil {
		err = credential.ParamError(credential.CodeMissing, "role", "is missing")
	}
	var m credential.Member
	if err == nil {
		m, err = n.auth.PutMember(r.Context(), c, r.PathValue("org"), r.PathValue("ws"), r.PathValue("user_id"), *role)
	}
	return respond(w, http.StatusOK, toMember(m), err)
}

func (n *native) removeMember(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	return respond(w, 0, nil, n.auth.RemoveMember(r.Context(), c, r.PathValue("org"), r.PathValue("ws"), r.PathValue("user_id")))
}

func (n *native) getScopes(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	scopes, err := n.auth.Catalogue(r.Context(), c)
	return respond(w, http.StatusOK, map[string]any{"scopes": scopes, "builtin": authority.BuiltinScopes}, err)
}

// putScopes replaces the catalogue: {"scopes": [...]}.
func (n *native) putScopes(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "scopes")
	var scopes []string
	if err == nil {
		scopes, err = f.Strings("scopes")
	}
	if err == nil {
		scopes, err = n.auth.SetCatalogue(r.Context(), c, scopes)
	}
	return respond(w, http.StatusOK, map[string]any{"scopes": scopes, "builtin": authority.BuiltinScopes}, err)
}
