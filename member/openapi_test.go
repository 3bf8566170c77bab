package member

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/phalanx-defence/phalanx/decisions"
)

// openAPIPath is the API's description, kept by hand next to the docs.
const openAPIPath = "../docs/api/openapi.yaml"

type openAPIDoc struct {
	Paths      map[string]map[string]openAPIOp `yaml:"paths"`
	Components struct {
		Schemas   map[string]*openAPISchema `yaml:"schemas"`
		Responses map[string]openAPIResp    `yaml:"responses"`
	} `yaml:"components"`
}

type openAPIOp struct {
	Parameters []struct {
		Name string `yaml:"name"`
		In   string `yaml:"in"`
	} `yaml:"parameters"`
	RequestBody *struct{}              `yaml:"requestBody"`
	Responses   map[string]openAPIResp `yaml:"responses"`
}

type openAPIResp struct {
	Ref     string `yaml:"$ref"`
	Content map[string]struct {
		Schema *openAPISchema `yaml:"schema"`
	} `yaml:"content"`
}

type openAPISchema struct {
	Ref                  string                    `yaml:"$ref"`
	Type                 string                    `yaml:"type"`
	Required             []string                  `yaml:"required"`
	Properties           map[string]*openAPISchema `yaml:"properties"`
	Items                *openAPISchema            `yaml:"items"`
	AllOf                []*openAPISchema          `yaml:"allOf"`
	Enum                 []string                  `yaml:"enum"`
	AdditionalProperties any                       `yaml:"additionalProperties"`
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var d openAPIDoc
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	return &d
}

// routes lists "METHOD /path" for every operation in the document.
func (d *openAPIDoc) routes() []string {
	var rs []string
	for p, ops := range d.Paths {
		for m := range ops {
			switch m {
			case "get", "post", "put", "patch", "delete", "head", "options":
				rs = append(rs, strings.ToUpper(m)+" "+p)
			}
		}
	}
	slices.Sort(rs)
	return rs
}

// muxRoutes reads the patterns handler() registers from the package's
// files (api.go, and the files that add routes to its mux, such as
// admin.go): the mux cannot list its own routes, and a hand-kept copy
// would drift silently.
func muxRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var rs []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+ /[^"]*)"`).FindAllSubmatch(src, -1) {
			rs = append(rs, string(m[1]))
		}
	}
	slices.Sort(rs)
	return rs
}

// TestOpenAPIMatchesMux checks that the document and the mux serve the same
// routes, in both directions.
func TestOpenAPIMatchesMux(t *testing.T) {
	doc, mux := loadOpenAPI(t).routes(), muxRoutes(t)
	if len(mux) < 10 {
		t.Fatalf("found only %d routes in api.go (%v): has handler() changed shape? update muxRoutes", len(mux), mux)
	}
	for _, r := range mux {
		if !slices.Contains(doc, r) {
			t.Errorf("%s is served but not in %s: document it", r, openAPIPath)
		}
	}
	for _, r := range doc {
		if !slices.Contains(mux, r) {
			t.Errorf("%s is in %s but not served: remove it or serve it", r, openAPIPath)
		}
	}
}

// TestOpenAPIAgainstMember asks a running member every documented route,
// without and with the token, and checks the JSON answers against the
// documented schemas: keys the Go types write and the document does not
// know, or documented required keys they do not write, are errors.
func TestOpenAPIAgainstMember(t *testing.T) {
	doc := loadOpenAPI(t)
	dir := filepath.Join(t.TempDir(), "founder")
	if _, err := Init(dir, "openapi", "127.0.0.1:0", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := start(t, dir)
	c, err := Client(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A decision in force, so that GET /v1/decisions has an element whose
	// keys the schema check sees (an empty array checks nothing).
	changes, unsub := r.m.Decisions().Subscribe(256)
	defer unsub()
	inForce := netip.MustParsePrefix("192.0.2.9/32")
	if _, err := c.AddDecision(t.Context(), DecisionRequest{Value: "192.0.2.9", Reason: "openapi test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changes, decisions.Added, inForce)
	// Valid requests, so that each route answers its success status.
	bodies := map[string]string{
		"POST /v1/decisions": `{"value":"192.0.2.1","type":"ban","duration":"1h","reason":"openapi test"}`,
		"POST /v1/ceasefire": `{"for":"1m","scenario":"http-probing","scope":"192.0.2.0/24","reason":"openapi test"}`,
	}
	query := map[string]string{
		"DELETE /v1/decisions": "?value=192.0.2.1&reason=test",
		"DELETE /v1/ceasefire": "?id=0123456789abcdef",
	}
	for _, route := range doc.routes() {
		method, path, _ := strings.Cut(route, " ")
		ops := doc.Paths[path][strings.ToLower(method)]
		t.Run(route, func(t *testing.T) {
			status, _, body := call(t, method, c.base+path+query[route], "", bodies[route])
			if status != http.StatusUnauthorized {
				t.Errorf("without the token: %d, want 401\n%s", status, body)
			}
			if _, ok := ops.Responses["401"]; !ok {
				t.Error("401 is not documented")
			}
			status, ctype, body := call(t, method, c.base+path+query[route], c.token, bodies[route])
			if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
				t.Fatalf("with the token: %d: documented but not served\n%s", status, body)
			}
			resp, ok := ops.Responses[strconv.Itoa(status)]
			if !ok {
				t.Fatalf("answered %d, which is not documented\n%s", status, body)
			}
			resp = doc.response(t, resp)
			if !strings.HasPrefix(ctype, "application/json") {
				if _, ok := resp.Content["application/json"]; ok {
					t.Errorf("documented as JSON, answered %q", ctype)
				}
				return
			}
			media, ok := resp.Content["application/json"]
			if !ok || media.Schema == nil {
				t.Fatalf("answered JSON, documented without a JSON schema")
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, body)
			}
			doc.check(t, "$", media.Schema, v)
		})
	}
}

func call(t *testing.T, method, url, token, body string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func (d *openAPIDoc) response(t *testing.T, r openAPIResp) openAPIResp {
	t.Helper()
	if r.Ref == "" {
		return r
	}
	got, ok := d.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")]
	if !ok {
		t.Fatalf("dangling %s", r.Ref)
	}
	return got
}

func (d *openAPIDoc) schema(t *testing.T, s *openAPISchema) *openAPISchema {
	t.Helper()
	for s.Ref != "" {
		got, ok := d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		if !ok {
			t.Fatalf("dangling %s", s.Ref)
		}
		s = got
	}
	return s
}

// check validates v against s as far as this API needs: types, enums,
// required keys, and no undocumented keys in objects that list properties.
func (d *openAPIDoc) check(t *testing.T, at string, s *openAPISchema, v any) {
	t.Helper()
	s = d.schema(t, s)
	if len(s.AllOf) > 0 {
		merged := &openAPISchema{Type: "object", Properties: map[string]*openAPISchema{}}
		for _, part := range s.AllOf {
			part = d.schema(t, part)
			merged.Required = append(merged.Required, part.Required...)
			for k, p := range part.Properties {
				merged.Properties[k] = p
			}
		}
		s = merged
	}
	switch s.Type {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %T, documented as an object", at, v)
			return
		}
		for _, k := range s.Required {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s: required %q missing", at, k)
			}
		}
		for k, val := range obj {
			if p, ok := s.Properties[k]; ok {
				d.check(t, at+"."+k, p, val)
			} else if len(s.Properties) > 0 {
				t.Errorf("%s: key %q is not documented", at, k)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			t.Errorf("%s: %T, documented as an array", at, v)
			return
		}
		for i, e := range arr {
			d.check(t, at+"["+strconv.Itoa(i)+"]", s.Items, e)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			t.Errorf("%s: %T, documented as a string", at, v)
		} else if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			t.Errorf("%s: %q not in %v", at, str, s.Enum)
		}
	case "integer", "number":
		f, ok := v.(float64)
		if !ok {
			t.Errorf("%s: %T, documented as a %s", at, v, s.Type)
		} else if s.Type == "integer" && f != float64(int64(f)) {
			t.Errorf("%s: %v, documented as an integer", at, f)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			t.Errorf("%s: %T, documented as a boolean", at, v)
		}
	}
}
