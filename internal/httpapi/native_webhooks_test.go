package httpapi_test

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/keyward/keyward/internal/credential"
)

// openapi.json's WebhookEventType lists the event types a webhook may
// subscribe to, as credential.EventTypes does.
func TestOpenAPIListsEveryWebhookEventType(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	want := append([]string{credential.EventAll}, credential.EventTypes...)
	if got := doc.Components.Schemas["WebhookEventType"].Enum; !slices.Equal(got, want) {
		t.Errorf("WebhookEventType enum %v\nwant %v", got, want)
	}
}
