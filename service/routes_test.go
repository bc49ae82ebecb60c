package service

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/docs"
)

// docs/openapi.yaml lists exactly the routes of the route table.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	raw, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var inSpec, inTable []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				inSpec = append(inSpec, strings.ToUpper(method)+" "+path)
			}
		}
	}
	for _, rt := range (&Server{}).routeTable() {
		inTable = append(inTable, rt.method+" "+rt.path)
	}
	slices.Sort(inSpec)
	slices.Sort(inTable)
	if !slices.Equal(inSpec, inTable) {
		t.Fatalf("docs/openapi.yaml lists\n  %s\nthe route table has\n  %s", strings.Join(inSpec, "\n  "), strings.Join(inTable, "\n  "))
	}
}
