// Package docs holds the documents the relay serves itself: the OpenAPI
// description of its admin API.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml, served at GET /api/v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
