package clerk

import (
	"net/http"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

type machineJSON struct {
	Object          string `json:"object"`
	ID              string `json:"id"`
	Name            string `json:"name"`
	InstanceID      string `json:"instance_id"`
	CreatedAt       int64  `json:"created_at"`
	UpdatedAt       int64  `json:"updated_at"`
	DefaultTokenTTL int64  `json:"default_token_ttl"`
}

type machineWithScopesJSON struct {
	machineJSON
	ScopedMachines []machineJSON `json:"scoped_machines"`
}

type machineCreatedJSON struct {
	machineWithScopesJSON
	SecretKey string `json:"secret_key"`
}

func toMachine(m credential.Machine) machineJSON {
	return machineJSON{
		Object:          "machine",
		ID:              m.ID,
		Name:            m.Name,
		InstanceID:      m.InstanceID,
		CreatedAt:       m.CreatedAt.UnixMilli(),
		UpdatedAt:       m.UpdatedAt.UnixMilli(),
		DefaultTokenTTL: m.DefaultTokenTTL,
	}
}

func toMachineWithScopes(m credential.Machine) machineWithScopesJSON {
	out := machineWithScopesJSON{machineJSON: toMachine(m), ScopedMachines: make([]machineJSON, len(m.ScopedMachines))}
	for i, sm := range m.ScopedMachines {
		out.ScopedMachines[i] = toMachine(sm)
	}
	return out
}

func (s *surface) listMachines(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in := authority.ListMachinesInput{Query: r.URL.Query().Get("query"), OrderBy: r.URL.Query().Get("order_by")}
	var err error
	if in.Limit, in.Offset, err = wire.Page(r); err != nil {
		return err
	}
	machines, total, err := s.auth.ListMachines(r.Context(), c, in)
	if err != nil {
		return err
	}
	data := make([]machineWithScopesJSON, len(machines))
	for i, m := range machines {
		data[i] = toMachineWithScopes(m)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"data": data, "total_count": total})
	return nil
}

func (s *surface) createMachine(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := decodeCreateMachine(r)
	if err != nil {
		return err
	}
	m, secret, err := s.auth.CreateMachine(r.Context(), c, in)
	if err != nil {
		return err
	}
	// The create response is one of the two places a machine secret is
	// handed out.
	wire.WriteSecretJSON(w, http.StatusOK, machineCreatedJSON{machineWithScopesJSON: toMachineWithScopes(m), SecretKey: secret.Reveal()})
	return nil
}

func decodeCreateMachine(r *http.Request) (in authority.CreateMachineInput, err error) {
	f, err := wire.ReadForm(r, "name", "scoped_machines", "default_token_ttl")
	if err != nil {
		return in, err
	}
	if in.Name, err = f.String("name"); err != nil {
		return in, err
	}
	if in.ScopedMachines, err = f.Strings("scoped_machines"); err != nil {
		return in, err
	}
	in.DefaultTokenTTL, err = f.Int("default_token_ttl")
	return in, err
}

func (s *surface) getMachine(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	m, err := s.auth.GetMachine(r.Context(), c, r.PathValue("machine_id"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, toMachineWithScopes(m))
	return nil
}

func (s *surface) updateMachine(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "name", "default_token_ttl")
	var in authority.UpdateMachineInput
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.DefaultTokenTTL, err = f.Int("default_token_ttl")
	}
	if err != nil {
		return err
	}
	m, err := s.auth.UpdateMachine(r.Context(), c, r.PathValue("machine_id"), in)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, toMachineWithScopes(m))
	return nil
}

func (s *surface) deleteMachine(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	id := r.PathValue("machine_id")
	if err := s.auth.DeleteMachine(r.Context(), c, id); err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"object": "machine", "id": id, "deleted": true})
	return nil
}

type secretKeyJSON struct {
	Object string `json:"object"`
	Secret string `json:"secret"`
}

func (s *surface) getSecretKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	secret, err := s.auth.MachineSecretKey(r.Context(), c, r.PathValue("machine_id"))
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusOK, secretKeyJSON{Object: "machine_secret_key", Secret: secret.Reveal()})
	return nil
}

func (s *surface) rotateSecretKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "previous_token_ttl")
	var ttl *int64
	if err == nil {
		ttl, err = f.Int("previous_token_ttl")
	}
	if err != nil {
		return err
	}
	secret, err := s.auth.RotateMachineSecretKey(r.Context(), c, r.PathValue("machine_id"), ttl)
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusOK, secretKeyJSON{Object: "machine_secret_key", Secret: secret.Reveal()})
	return nil
}

func (s *surface) createScope(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	to, err := wire.ReadString(r, "to_machine_id")
	if err != nil {
		return err
	}
	scope, err := s.auth.CreateMachineScope(r.Context(), c, r.PathValue("machine_id"), to)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{
		"object":          "machine_scope",
		"from_machine_id": scope.FromMachineID,
		"to_machine_id":   scope.ToMachineID,
		"created_at":      scope.CreatedAt.UnixMilli(),
	})
	return nil
}

func (s *surface) deleteScope(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	from, to := r.PathValue("machine_id"), r.PathValue("other_machine_id")
	if err := s.auth.DeleteMachineScope(r.Context(), c, from, to); err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"object": "machine_scope", "from_machine_id": from, "to_machine_id": to, "deleted": true})
	return nil
}
