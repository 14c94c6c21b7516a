package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPIMatchesRoutes: the served document is valid OpenAPI 3, every
// route the gateway serves is in it with the permission it needs, and it
// documents nothing the gateway does not serve.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPISpec)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}

	served := map[string]string{ // "METHOD path" → permission
		"GET /healthz":                              "open",
		"GET /readyz":                               "open",
		"GET /metrics":                              PermMetrics.String(),
		"GET /api/v1/openapi.yaml":                  "open",
		"POST /api/v1/session":                      "open",
		"POST /api/v1/cameras/{camera}/whep":        PermVideoWatch.String(),
		"PATCH /api/v1/cameras/{camera}/whep/{id}":  PermVideoWatch.String(),
		"DELETE /api/v1/cameras/{camera}/whep/{id}": PermVideoWatch.String(),
	}
	for _, rt := range routes {
		perm := "any"
		if rt.perm != 0 {
			perm = rt.perm.String()
		}
		served[rt.pattern] = perm
	}
	documented := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			perm, _ := op.Extensions["x-permission"].(string)
			documented[method+" "+path] = perm
		}
	}
	var problems []string
	for k, perm := range served {
		switch got, ok := documented[k]; {
		case !ok:
			problems = append(problems, k+": served but not documented")
		case got != perm:
			problems = append(problems, k+": documented x-permission "+got+", the route needs "+perm)
		}
	}
	for k := range documented {
		if _, ok := served[k]; !ok {
			problems = append(problems, k+": documented but not served")
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		t.Fatalf("the OpenAPI document and the routes differ:\n %s", strings.Join(problems, "\n "))
	}

	// And it is what the gateway serves.
	w := httptest.NewRecorder()
	Handler(Options{}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.yaml", nil))
	if w.Code != http.StatusOK || !slices.Equal(w.Body.Bytes(), openAPISpec) || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/yaml") {
		t.Fatalf("GET /api/v1/openapi.yaml: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
}
