package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPISpec is the API's OpenAPI 3 document. TestOpenAPIMatchesRoutes
// checks it against the route table: every route documented with the
// permission it needs, nothing documented that is not served.
//
//go:embed openapi/openapi.yaml
var openAPISpec []byte

// OpenAPISpec returns the OpenAPI document (for the console's typed client
// and for tools).
func OpenAPISpec() []byte { return openAPISpec }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	_, _ = w.Write(openAPISpec)
}
