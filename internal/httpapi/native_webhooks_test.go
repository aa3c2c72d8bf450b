package httpapi_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
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

// The README's table of event types (in "Events and leaks") names every
// type credential.EventTypes lists, and no other.
func TestREADMEListsEveryWebhookEventType(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Events and leaks\n")
	if !ok {
		t.Fatal(`README has no "## Events and leaks" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, table, ok := strings.Cut(section, "\n| family | events |\n|---|---|\n")
	if !ok {
		t.Fatal(`"Events and leaks" has no "| family | events |" table`)
	}
	table, _, _ = strings.Cut(table, "\n\n")
	var listed []string
	for _, row := range strings.Split(table, "\n") {
		cells := strings.Split(row, "|")
		if len(cells) < 3 {
			t.Fatalf("table row %q", row)
		}
		for _, m := range regexp.MustCompile("`([a-z0-9_.]+)`").FindAllStringSubmatch(cells[2], -1) {
			listed = append(listed, m[1])
		}
	}
	for _, typ := range credential.EventTypes {
		if !slices.Contains(listed, typ) {
			t.Errorf("the README's event table does not list %s", typ)
		}
	}
	for _, typ := range listed {
		if !slices.Contains(credential.EventTypes, typ) {
			t.Errorf("the README's event table lists %s, which credential.EventTypes does not", typ)
		}
	}
}
