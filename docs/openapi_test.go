package docs

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

func TestOpenAPIJSON(t *testing.T) {
	raw, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.OpenAPI != "3.1.0" || len(doc.Paths) == 0 {
		t.Fatalf("openapi %q, %d paths, %v", doc.OpenAPI, len(doc.Paths), err)
	}
}

// YAML that has no JSON form is refused with the place named, not mangled.
func TestJSONableRefusesYAMLOnlyValues(t *testing.T) {
	for src, want := range map[string]string{
		"responses:\n  200: {description: x}\n": "/responses",
		"a:\n  - 2026-01-02T03:04:05Z\n":        "/a/0",
	} {
		var v any
		if err := yaml.Unmarshal([]byte(src), &v); err != nil {
			t.Fatal(err)
		}
		if _, err := jsonable(v, ""); err == nil || !strings.HasPrefix(err.Error(), want+":") {
			t.Errorf("%q: %v, want an error at %s", src, err, want)
		}
	}
}
