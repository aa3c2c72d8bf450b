package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

func TestHello(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	created := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]any{"name": "worker"}).JSON(t)
	minted := e.Do(t, "POST", "/clerk/v1/m2m_tokens", created["secret_key"].(string), map[string]any{}).JSON(t)
	pat := e.DoWith(t, "POST", "/spatio/v1/tokens", map[string]any{"name": "laptop"},
		http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {"alice"}}).JSON(t)["token"].(string)

	// The API holds a key that can verify and do nothing else, as the
	// README creates it.
	verifyKey, err := client.New(e.URL, e.AdminKey).CreateAdminKey(context.Background(),
		client.AdminKeyParams{Name: "protected-api", Permissions: []string{client.PermissionVerify}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(verifyKey.Secret, pat)
	if resp := e.Do(t, "GET", "/clerk/v1/machines", verifyKey.Secret, nil); resp.Status != http.StatusForbidden {
		t.Fatalf("the example's key lists machines: %d, want 403", resp.Status)
	}

	srv := httptest.NewServer(Handler(client.New(e.URL, verifyKey.Secret), client.WithClock(e.Clock.Now)))
	defer srv.Close()
	for token, want := range map[string]int{minted["token"].(string): 200, pat: 200, "": 401, "mt_wrong": 401} {
		req, _ := http.NewRequest("GET", srv.URL+"/hello", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%d, want %d", resp.StatusCode, want)
		}
		if token == minted["token"] && (body["hello"] != created["id"] || body["kind"] != "m2m_token") {
			t.Errorf("body %v", body)
		}
	}
}
