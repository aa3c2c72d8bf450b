package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/google/uuid"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Native org tokens: an organization's API tokens, with privileges on the
// org, its sites and sitegroups. The key is in the create answer only;
// lists and reads show its mask.

type nativeOrgTokenJSON struct {
	ID         string                 `json:"id"`
	OrgID      string                 `json:"org_id"`
	Name       string                 `json:"name"`
	Privileges []credential.Privilege `json:"privileges"`
	SrcIPs     []string               `json:"src_ips"`
	CreatedBy  string                 `json:"created_by"`
	Mask       string                 `json:"mask"`
	CreatedAt  string                 `json:"created_at"`
	LastUsedAt *string                `json:"last_used_at"`
	Meta       json.RawMessage        `json:"meta"` // the token's meta (controls at verify time)
}

func toNativeOrgToken(t authority.OrgToken) nativeOrgTokenJSON {
	out := nativeOrgTokenJSON{ID: t.ID, OrgID: t.OrgID, Name: t.Name, Privileges: t.Privileges, SrcIPs: t.SrcIPs, CreatedBy: t.CreatedBy,
		Mask: t.Mask, CreatedAt: rfc3339(t.CreatedAt), LastUsedAt: optionalTime(t.LastUsedAt), Meta: nativeMeta(t.Meta)}
	if out.Privileges == nil {
		out.Privileges = []credential.Privilege{}
	}
	if out.SrcIPs == nil {
		out.SrcIPs = []string{}
	}
	return out
}

// orgTokenOrg is the organization id of an org-token route: {org} is an
// id, or a slug resolved as the other organization routes resolve it.
func (n *native) orgTokenOrg(r *http.Request, c authority.Caller) (string, error) {
	org := r.PathValue("org")
	if _, err := uuid.Parse(org); err == nil {
		return org, nil
	}
	o, err := n.auth.GetOrganization(r.Context(), c, org)
	return o.ID, err
}

func (n *native) registerOrgTokens(mux wire.Router) {
	const t = "/v1/organizations/{org}/tokens"
	routes := map[string]wire.Handler{
		"POST " + t:                       n.createOrgToken,
		"GET " + t:                        n.listOrgTokens,
		"GET " + t + "/{org_token_id}":    n.getOrgToken,
		"PATCH " + t + "/{org_token_id}":  n.updateOrgToken,
		"DELETE " + t + "/{org_token_id}": n.deleteOrgToken,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, n.Authenticated(h))
	}
}

// orgTokenInput reads {"name", "privileges": [{scope, role, site_id,
// sitegroup_id, views}], "src_ips": [...]}; each is optional on update.
func orgTokenInput(r *http.Request) (in authority.OrgTokenInput, err error) {
	f, err := wire.ReadForm(r, "name", "privileges", "src_ips")
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.SrcIPs, err = f.Strings("src_ips")
	}
	if err == nil && f.Has("privileges") {
		dec := json.NewDecoder(bytes.NewReader(f.Raw("privileges")))
		dec.DisallowUnknownFields()
		in.Privileges = []credential.Privilege{}
		if derr := dec.Decode(&in.Privileges); derr != nil {
			err = credential.ParamError(credential.CodeInvalid, "privileges", "must be an array of {scope, role, site_id, sitegroup_id, views}")
		}
	}
	return in, err
}

func (n *native) createOrgToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := orgTokenInput(r)
	if err == nil && in.Privileges == nil {
		err = credential.ParamError(credential.CodeMissing, "privileges", "is missing")
	}
	var org string
	if err == nil {
		org, err = n.orgTokenOrg(r, c)
	}
	var t authority.OrgToken
	if err == nil {
		t, err = n.auth.CreateOrgToken(r.Context(), c, org, in)
	}
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusCreated, struct {
		nativeOrgTokenJSON
		Key string `json:"key"`
	}{toNativeOrgToken(t), t.Key})
	return nil
}

// listOrgTokens: the organization's live tokens; ?meta.<key>=<value>
// filters on meta (the authority returns the filtered list whole, so the
// page and its cursor count matches only).
func (n *native) listOrgTokens(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	var org string
	if err == nil {
		org, err = n.orgTokenOrg(r, c)
	}
	var list []authority.OrgToken
	if err == nil {
		list, err = n.auth.ListOrgTokens(r.Context(), c, org, metaQuery(r))
	}
	items, next := pageOf(list, p)
	return respond(w, http.StatusOK, mapPage(items, next, toNativeOrgToken), err)
}

func (n *native) getOrgToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	org, err := n.orgTokenOrg(r, c)
	var t authority.OrgToken
	if err == nil {
		t, err = n.auth.GetOrgToken(r.Context(), c, org, r.PathValue("org_token_id"))
	}
	return respond(w, http.StatusOK, toNativeOrgToken(t), err)
}

func (n *native) updateOrgToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := orgTokenInput(r)
	var org string
	if err == nil {
		org, err = n.orgTokenOrg(r, c)
	}
	if err == nil {
		err = n.auth.UpdateOrgToken(r.Context(), c, org, r.PathValue("org_token_id"), in)
	}
	var t authority.OrgToken
	if err == nil {
		t, err = n.auth.GetOrgToken(r.Context(), c, org, r.PathValue("org_token_id"))
	}
	return respond(w, http.StatusOK, toNativeOrgToken(t), err)
}

func (n *native) deleteOrgToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	org, err := n.orgTokenOrg(r, c)
	if err == nil {
		err = n.auth.DeleteOrgToken(r.Context(), c, org, r.PathValue("org_token_id"))
	}
	return respond(w, 0, nil, err)
}
