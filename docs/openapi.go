// Package docs holds the service's OpenAPI description, docs/openapi.yaml,
// the one source of truth for it: the binary embeds the file and serves it
// as JSON (GET /api/v1/openapi.json), and the API tests validate every
// request and response against it.
package docs

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v4"
)

// openapiYAML is a string, so the embedded bytes cannot be changed.
//
//go:embed openapi.yaml
var openapiYAML string

// OpenAPIYAML returns a copy of docs/openapi.yaml as it was built in.
func OpenAPIYAML() []byte { return []byte(openapiYAML) }

// OpenAPIJSON converts the embedded description to JSON. Call it once at
// start-up: it parses the whole document.
func OpenAPIJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal([]byte(openapiYAML), &doc); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	doc, err := jsonable(doc, "")
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	return json.Marshal(doc)
}

// jsonable checks that a decoded YAML value has a JSON form: mappings keyed
// by strings only (status codes must be quoted), and no YAML-only scalars
// such as timestamps.
func jsonable(v any, at string) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			c, err := jsonable(e, at+"/"+k)
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
		return v, nil
	case []any:
		for i, e := range v {
			c, err := jsonable(e, fmt.Sprintf("%s/%d", at, i))
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
		return v, nil
	case nil, string, bool, int, int64, uint64, float64:
		return v, nil
	}
	return nil, fmt.Errorf("%s: %T has no JSON form (quote it)", at, v)
}
